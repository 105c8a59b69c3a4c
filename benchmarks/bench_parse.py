"""P1: parsing the example DAG files, against the same DAG shapes built from ``EmptyOperator``.

Each side runs in a fresh interpreter that first imports what Airflow's DAG processor has imported before it
forks a file's parsing process (``airflow.sdk``, the processor's manager module with the models it writes,
and the ``airflow.*`` modules the file names), then runs
``DagBag`` over every DAG file, as the processor does, and lists the heavy modules the parse loaded. The
baseline files declare the same DAG ids, task ids and dependencies with ``EmptyOperator`` only, so the ratio
is what the provider's operators, the DAGs' shared module and their imports add to a parse.

Two figures, best of the repeats: the fresh interpreter's whole wall time (start, imports, parse: the
goal's wording), and the ``DagBag`` time alone after the pre-imports (what each parse of a file costs the
processor beyond Airflow itself, a much stricter ratio since the baseline's is a few milliseconds).
Goal: ours / baseline <= 1.2, and no heavy module loaded.

Run: ``.venv/bin/python -m benchmarks.bench_parse [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Figure

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
#: Not DAG files: the DAGs' shared module (``dags/churn_common.py``).
NOT_DAG_FILES = {"churn_common.py"}
#: The modules a DAG file must never load (the project's rule), top-level names.
HEAVY = ("feast", "great_expectations", "evidently", "mlflow", "torch", "pandas", "sklearn", "scipy")
GOAL = 1.2
#: Runs in the fresh interpreter: pre-import as the DAG processor does, time the DagBags, report as JSON.
_PARSE = """
import importlib, json, sys, time
from airflow.utils.file import iter_airflow_imports
files = sys.argv[1:]
import airflow.sdk
import airflow.dag_processing.manager  # the processor's parent, which forks each file's parse, has it
for path in files:
    for module in iter_airflow_imports(path):
        importlib.import_module(module)
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
started = time.perf_counter()
bags = [DagBag(dag_folder=path, safe_mode=False) for path in files]
seconds = time.perf_counter() - started
loaded = sorted({name.split(".")[0] for name in set(sys.modules) - before})
dags = {
    dag_id: {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks}
    for bag in bags for dag_id, dag in bag.dags.items()
}
errors = {path: str(err) for bag in bags for path, err in bag.import_errors.items()}
print(json.dumps({"seconds": seconds, "loaded": loaded, "dags": dags, "errors": errors}))
"""
_BASELINE_FILE = """from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG({dag_id!r}, schedule=None):
    tasks = {{task_id: EmptyOperator(task_id=task_id) for task_id in {upstream!r}}}
    for task_id, upstream in {upstream!r}.items():
        for up in upstream:
            tasks[up] >> tasks[task_id]
"""


@dataclass(frozen=True)
class Parse:
    """One fresh interpreter's parse of a set of DAG files.

    :param seconds: the DagBags' wall time.
    :param wall: the interpreter's wall time, start to exit.
    :param heavy: the heavy modules the parse loaded.
    :param dags: each DAG's tasks and their upstream task ids.
    """

    seconds: float
    wall: float
    heavy: list[str]
    dags: dict[str, dict[str, list[str]]]


def dag_files(folder: Path = DAGS) -> list[Path]:
    """The example DAG files.

    :param folder: the DAGs folder.
    """
    return sorted(path for path in folder.glob("*.py") if path.name not in NOT_DAG_FILES)


def parse(files: list[Path], pythonpath: Path, home: Path) -> Parse:
    """Parse ``files`` in a fresh interpreter.

    :param files: the DAG files.
    :param pythonpath: the folder their own imports resolve against.
    :param home: ``AIRFLOW_HOME`` of the interpreter (nothing of the caller's Airflow leaks in).
    :raises RuntimeError: the interpreter failed, or a file did not import.
    """
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": f"{pythonpath}:{REPO}", "AIRFLOW_HOME": str(home)}
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] = "0"  # a busy machine slows the figure, never fails the parse
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PARSE, *map(str, files)], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"parsing {pythonpath} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"DAG files failed to import: {result['errors']}")
    heavy = [name for name in HEAVY if name in result["loaded"]]
    return Parse(seconds=result["seconds"], wall=wall, heavy=heavy, dags=result["dags"])


def write_baseline(dags: dict[str, dict[str, list[str]]], folder: Path) -> list[Path]:
    """Write one file per DAG declaring its shape with ``EmptyOperator`` only.

    :param dags: each DAG's tasks and their upstream task ids.
    :param folder: where to write them.
    """
    paths = []
    for dag_id, upstream in dags.items():
        path = folder / f"{dag_id}.py"
        path.write_text(_BASELINE_FILE.format(dag_id=dag_id, upstream=upstream))
        paths.append(path)
    return paths


def run(smoke: bool) -> list[Figure]:
    """Parse the example DAGs and their EmptyOperator twins, alternately, best of the repeats.

    :param smoke: once each; else best of 5.
    """
    return measure(1 if smoke else 5)


def measure(repeats: int) -> list[Figure]:
    """The P1 figures: the whole fresh interpreter, and the DagBags alone.

    :param repeats: fresh interpreters per side (the best counts).
    """
    with tempfile.TemporaryDirectory() as scratch:
        home, twins = Path(scratch) / "airflow", Path(scratch) / "twins"
        home.mkdir()
        twins.mkdir()
        runs = [parse(dag_files(), DAGS, home)]
        baseline_files = write_baseline(runs[0].dags, twins)
        baselines = [parse(baseline_files, twins, home)]
        if baselines[0].dags != runs[0].dags:
            raise RuntimeError("the EmptyOperator twins do not have the shapes of the example DAGs")
        for _ in range(repeats - 1):
            runs.append(parse(dag_files(), DAGS, home))
            baselines.append(parse(baseline_files, twins, home))
    tasks = sum(len(tasks) for tasks in runs[0].dags.values())
    heavy = sorted({name for run in runs for name in run.heavy})
    what = f"{len(dag_files())} example DAG files ({len(runs[0].dags)} DAGs, {tasks} tasks)"
    figures = []
    for label, key in (("fresh interpreter, start to parsed", "wall"), ("DagBag after the pre-imports", "seconds")):
        ours, baseline = (min(getattr(p, key) for p in side) for side in (runs, baselines))
        figures.append(
            Figure(
                goal_id="P1",
                what=f"parse {what}: {label}",
                ours=ours,
                baseline=baseline,
                baseline_name="same DAG shapes from EmptyOperator",
                unit="s",
                goal=f"ratio <= {GOAL}, no heavy module",
                met=ours / baseline <= GOAL and not heavy,
                note=f"heavy modules loaded: {', '.join(heavy) or 'none'}",
            )
        )
    return figures


def main() -> None:
    """Print the figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    for figure in measure(parser.parse_args().repeats):
        print(
            f"{figure.what}: {figure.ours:.3f} s vs {figure.baseline:.3f} s, ratio {figure.ratio:.2f} ({figure.goal})"
        )


if __name__ == "__main__":
    main()
