"""``make bench``: run every ``benchmarks/bench_*.py`` and write ``benchmarks/RESULTS.md``.

Each module runs in its own interpreter (one module's imports never warm up another's measurement, and a
module that crashes is reported with its error while the others still run). A timing never fails the
command: the goal being met or not is a column of the table.

Run: ``.venv/bin/python -m benchmarks [--smoke] [--only bench_parse ...] [--out RESULTS.md]``. Without
``--smoke`` it measures the goals' real sizes and writes ``benchmarks/RESULTS.md``; with it, each module
runs once on tiny sizes and the table is printed only (unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from benchmarks.harness import Figure

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
#: The goals of issue #14, and the module that measures each (``None``: nothing can measure it yet).
GOALS: dict[str, tuple[str, str | None]] = {
    "P1": ("Parse every example DAG file in a fresh interpreter", "bench_parse"),
    "P2": ("Drift check", "bench_drift"),
    "P3": ("Feature ingestion and training sets", "bench_features"),
    "P4": ("Data validation", "bench_validation"),
    "P5": ("Trainer", "bench_trainer"),
    "P6": ("Drift event to new champion, embedded stack", "bench_ct"),
    "P7": ("Batch scoring", "bench_inference"),
    "P8": ("Batch ingestion", "bench_ingestion"),
    "P9": ("`DEMO_EXIT=1 make demo`", "bench_demo"),
}
#: Why a goal without a module is not measured.
NOT_BUILT: dict[str, str] = {}
#: The versions RESULTS.md records.
PACKAGES = ("apache-airflow", "mlflow", "torch", "pandas", "feast", "great-expectations", "evidently")
#: How long one module may take (the full demo is the longest).
MODULE_TIMEOUT = {False: 3600.0, True: 900.0}
_MARKER = "BENCHMARK-FIGURES:"
#: Run once before a full run: what a worker that has run before has in the file cache (the task libraries,
#: and the torch kernels of a training step). Cold, right after an install, the first module paid it: the
#: training task of P6 took 11.1 s instead of 4.3 s.
_WARM_UP = (
    "from airflow_mlops_provider.preload import preload_task_modules\n"
    "preload_task_modules()\n"
    "import torch\n"
    "layer = torch.nn.Linear(8, 1)\n"
    "optimizer = torch.optim.Adam(layer.parameters())\n"
    "layer(torch.randn(256, 8)).sum().backward()\n"
    "optimizer.step()\n"
)


@dataclass
class ModuleRun:
    """What one module produced: its figures, or the error that stopped it.

    :param module: the module's name (``bench_parse``).
    :param seconds: how long it ran.
    :param figures: its figures.
    :param error: the end of its output, if it failed.
    """

    module: str
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None


def discover() -> list[str]:
    """The benchmark modules, by name."""
    return sorted(path.stem for path in HERE.glob("bench_*.py"))


def run_module(module: str, smoke: bool) -> ModuleRun:
    """Run ``benchmarks.<module>.run(smoke)`` in a fresh interpreter.

    :param module: the module's name.
    :param smoke: tiny sizes, once.
    """
    code = (
        "import json, dataclasses, sys\n"
        f"from benchmarks.{module} import run\n"
        f"figures = run(smoke={smoke})\n"
        f"print({_MARKER!r} + json.dumps([dataclasses.asdict(f) for f in figures]), flush=True)\n"
    )
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=MODULE_TIMEOUT[smoke],
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ModuleRun(module, time.perf_counter() - started, error=f"timed out after {MODULE_TIMEOUT[smoke]:.0f}s")
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARKER)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        return ModuleRun(module, seconds, error=f"exit code {done.returncode}:\n{tail}")
    figures = [Figure(**raw) for raw in json.loads(lines[-1][len(_MARKER) :])]
    return ModuleRun(module, seconds, figures=figures)


def warm_up() -> str:
    """Run :data:`_WARM_UP` in a throwaway interpreter; say how it went, for the table's facts."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _WARM_UP], cwd=HERE.parent, capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        return "not warmed: the warm-up timed out after 900 s"
    if done.returncode != 0:
        return f"not warmed: the warm-up failed ({done.stderr.strip().splitlines()[-1:]})"
    return f"warmed first by one throwaway preload and training step ({time.perf_counter() - started:.0f} s)"


def machine() -> dict[str, str]:
    """The facts a reader needs to compare runs: cores, load, Python and package versions."""
    facts = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "load average (1, 5, 15 min)": ", ".join(f"{load:.2f}" for load in os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for package in PACKAGES:
        try:
            facts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts[package] = "not installed"
    return facts


def _number(value: float, unit: str) -> str:
    """A figure with its unit, 3 significant digits."""
    return f"{value:.3g} {unit}" if math.isfinite(value) else "n/a"


def render(runs: list[ModuleRun], facts: dict[str, str], smoke: bool) -> str:
    """RESULTS.md: every goal's figures beside their baselines, then the modules that failed.

    :param runs: the modules' results.
    :param facts: :func:`machine` at the start of the run.
    :param smoke: whether these are smoke sizes (not the goals' measurements).
    """
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`python -m benchmarks`); do not edit. Each figure and its baseline are measured",
        "in the same run on the same machine, so the ratio is what to compare across machines.",
        "",
    ]
    if smoke:
        lines += ["**Smoke run: tiny sizes, once each. These are not the goals' measurements.**", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    lines += [
        "",
        "| Goal | What | Ours | Baseline | Ratio | Target | Met | Note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_goal: dict[str, list[Figure]] = {}
    for module_run in runs:
        for figure in module_run.figures:
            by_goal.setdefault(figure.goal_id, []).append(figure)
    failed = {run.module: run for run in runs if run.error is not None}
    ran = {run.module for run in runs}
    for goal_id, (title, module) in GOALS.items():
        figures = by_goal.pop(goal_id, [])
        lines += [_row(fig) for fig in figures]
        if not figures:
            lines.append(f"| {goal_id} | {title} | | | | | | {_missing_reason(goal_id, module, failed, ran)} |")
    lines += [_row(fig) for figures in by_goal.values() for fig in figures]  # goals the table does not list
    if failed:
        lines += ["", "## Modules that failed", ""]
        for module, module_run in sorted(failed.items()):
            lines += [f"### {module} (after {module_run.seconds:.0f}s)", "", "```", str(module_run.error), "```", ""]
    lines += ["", "## Time per module", ""]
    lines += [f"- {run.module}: {run.seconds:.0f}s" for run in runs]
    return "\n".join(lines).rstrip() + "\n"


def _row(fig: Figure) -> str:
    """One figure as a table row."""
    baseline = f"{_number(fig.baseline, fig.unit)} ({fig.baseline_name})"
    met = "yes" if fig.met else "**no**"
    cells = [fig.goal_id, fig.what, _number(fig.ours, fig.unit), baseline, f"{fig.ratio:.2f}x", fig.goal, met, fig.note]
    return "| " + " | ".join(cell.replace("\n", " ").replace("|", "\\|") for cell in cells) + " |"


def _missing_reason(goal_id: str, module: str | None, failed: dict[str, ModuleRun], ran: set[str]) -> str:
    """Why a goal has no figure.

    :param goal_id: the goal.
    :param module: the module that measures it, if any.
    :param failed: the modules that failed, by name.
    :param ran: the modules that ran.
    """
    if module is None:
        return NOT_BUILT.get(goal_id, "not measured")
    if module in failed:
        return f"not measured: {module} failed (below)"
    if module not in ran:
        exists = (HERE / f"{module}.py").exists()
        return f"not measured: {module} was not run" if exists else f"not measured: no {module}.py yet"
    return f"not measured: {module} returned no {goal_id} figure"


def main(argv: list[str] | None = None) -> int:
    """Run the modules, print the table, write it unless it is a smoke run without ``--out``.

    :param argv: the command line (``sys.argv[1:]`` by default).
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, once each; nothing written")
    parser.add_argument("--only", nargs="+", metavar="MODULE", help="run only these modules (bench_parse ...)")
    parser.add_argument("--out", type=Path, help=f"where to write the table (default: {RESULTS}, not with --smoke)")
    args = parser.parse_args(argv)
    modules = discover()
    unknown = sorted(set(args.only or []) - set(modules))
    if unknown:
        parser.error(f"no such benchmark module: {', '.join(unknown)}; choose from {', '.join(modules)}")
    facts = machine()
    if not args.smoke:
        facts["file cache"] = warm_up()
    runs = []
    for module in args.only or modules:
        print(f"running {module} ({'smoke' if args.smoke else 'full'}) ...", flush=True)
        runs.append(result := run_module(module, args.smoke))
        print(f"  {len(result.figures)} figure(s) in {result.seconds:.0f}s" + (" FAILED" if result.error else ""))
    table = render(runs, facts, args.smoke)
    print(table)
    out = args.out or (None if args.smoke else RESULTS)
    if out is not None:
        out.write_text(table)
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
