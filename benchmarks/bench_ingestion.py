"""P8: a backlog of landed batches through ``feature_ingestion``'s tasks against raw GX plus raw Feast.

Ours is the DAG's code path for each chunk: the landed batches are spread over ``ingestion_tasks`` (4)
chunks by :func:`~airflow_mlops_provider.core.features.ingestion.spread`, as ``split_batches`` does, and each
chunk goes through ``DataValidationOperator.execute`` (the GX gate with quarantine, Data Docs written) and
``FeatureIngestionOperator.execute`` (checks, one part per batch, one materialization), as the mapped task
group runs them. The baseline, measured in the same run on the same rows, is what one process would do
with the raw libraries: the same GX suite over all the rows at once, one parquet part of all of them, one
``store.materialize`` over their range.

Both run in this process after their imports (the operators' ``execute`` rather than ``dag.test()``, which
would add Airflow's own bookkeeping per task and the metadata database to one side only). The start-up a
real worker pays per task instance (a fresh interpreter importing GX and Feast) is measured apart and
given in the note: it is paid once per task, 2 tasks per chunk, not per batch.

Each extra batch's cost is the slope between the full backlog and half of it.
Run: ``.venv/bin/python -m benchmarks.bench_ingestion [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from airflow_mlops_provider.core.features.batches import conform_batch
from airflow_mlops_provider.core.features.ingestion import spread
from airflow_mlops_provider.core.features.offline_source import materialization_window, part_uri
from benchmarks.bench_features import VIEW, Bench
from benchmarks.harness import Figure
from demo import data as demo_data

SUITE = Path(__file__).resolve().parents[1] / "dags" / "expectations" / "churn_raw_batch.json"
T0 = pd.Timestamp("2024-03-01T00:00Z")
TASKS = 4
IMPORTS = (
    "import airflow_mlops_provider.operators.features, airflow_mlops_provider.operators.validation; "
    "from airflow_mlops_provider.core.features.feast_repo import import_feast; import_feast(); "
    "import great_expectations"
)


class _TI:
    """What the operators read from ``context["ti"]``."""

    dag_id, run_id, try_number = "feature_ingestion", "bench", 1

    def __init__(self, task_id: str, map_index: int) -> None:
        self.task_id, self.map_index = task_id, map_index

    def xcom_push(self, key: str, value: Any) -> None:
        """Results are returned; nothing to keep."""


def land(folder: Path, count: int, rows: int) -> list[str]:
    """Write ``count`` hourly batches of ``rows`` rows; return their paths, oldest first."""
    folder.mkdir(parents=True, exist_ok=True)
    uris = []
    for index in range(count):
        path = folder / f"batch-{index:04d}.parquet"
        demo_data.generate_batch(rows, T0 + pd.Timedelta(hours=index), seed=index).to_parquet(path)
        uris.append(str(path))
    return uris


def ours(root: Path, batches: list[str], tasks: int = TASKS) -> float:
    """Seconds to gate and ingest ``batches`` the way the DAG's mapped task groups do, chunk after chunk.

    :param root: the feature repo's bench folder.
    :param batches: the landed batches.
    :param tasks: the ``ingestion_tasks`` Param; ``len(batches)``: one task pair per batch, as before chunks.
    """
    from airflow_mlops_provider.operators.features import FeatureIngestionOperator
    from airflow_mlops_provider.operators.validation import DataValidationOperator

    started = time.perf_counter()
    for index, chunk in enumerate(spread(batches, tasks)):
        gate = DataValidationOperator(
            task_id="validate_batches", dataset=chunk, suite_path=str(SUITE), on_failure="quarantine",
            quarantine_uri=str(root / "quarantine"), docs_uri=str(root / "docs" / f"chunk-{index}.html"),
        )  # fmt: skip
        passed = gate.execute({"ti": _TI("validate_batches", index)})["passed"]  # type: ignore[typeddict-item]
        context: Any = {"ti": _TI("ingest_batches", index), "outlet_events": defaultdict(lambda: SimpleNamespace())}
        FeatureIngestionOperator(task_id="ingest_batches", feature_view=VIEW, batch_uri=passed).execute(context)
    return time.perf_counter() - started


def raw(bench: Bench, batches: list[str]) -> float:
    """Seconds for raw GX over all the rows at once, one parquet part of them, one materialization."""
    import great_expectations as gx

    started = time.perf_counter()
    frame = pd.concat([pd.read_parquet(uri) for uri in batches], ignore_index=True)
    batch = (
        gx.get_context(mode="ephemeral")
        .data_sources.add_pandas("raw")
        .add_dataframe_asset("raw")
        .add_batch_definition_whole_dataframe("raw")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(gx.ExpectationSuite(**json.loads(SUITE.read_text())), result_format="SUMMARY")
    assert result.success
    table = conform_batch(frame, bench.view)  # the raw writer's own cast to the view's types
    part = Path(part_uri(bench.view.source_uri, "raw"))
    part.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, part)
    start, end = materialization_window(table, "event_timestamp", bench.view.source_uri)
    bench.store.materialize(start.to_pydatetime(), end.to_pydatetime(), [VIEW])
    return time.perf_counter() - started


def task_start_up() -> float:
    """Seconds for a fresh interpreter to import what an ingestion task imports (a worker's per-task cost)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True, capture_output=True)
    return time.perf_counter() - started


def measure(root: Path, count: int, rows: int, before: bool = False) -> tuple[float, float, float | None]:
    """Our seconds, the baseline's and, if ``before``, those of one task pair per batch (the DAG before chunks)
    for ``count`` batches, each on a fresh feature repo after a warm-up run of one batch on a repo of its own
    (first-use costs: GX's expectation registry, Feast's registry cache)."""
    batches = land(root / f"landing-{count}", count, rows)
    raw(Bench(root / f"raw-warm-{count}", rows), batches[:1])
    raw_seconds = raw(Bench(root / f"raw-{count}", rows), batches)
    ours(Bench(root / f"ours-warm-{count}", rows).root, batches[:1])
    ours_seconds = ours(Bench(root / f"ours-{count}", rows).root, batches)
    unchunked = ours(Bench(root / f"before-{count}", rows).root, batches, tasks=count) if before else None
    return ours_seconds, raw_seconds, unchunked


def run(smoke: bool) -> list[Figure]:
    """P8's figures: the whole backlog against the raw baseline, and the cost of each extra batch."""
    count, rows = (4, 500) if smoke else (200, 500)
    with tempfile.TemporaryDirectory(prefix="bench-ingestion-") as tmp:
        root = Path(tmp)
        whole, baseline, before = measure(root, count, rows, before=True)
        half, _, _ = measure(root, count // 2, rows)
    per_batch = (whole - half) / (count - count // 2)
    start_up = task_start_up()
    tasks = 2 * min(TASKS, count)
    note = (
        f"{TASKS} chunks, 2 tasks each; a worker's start-up per task is {start_up:.1f} s (imports), "
        f"{tasks * start_up:.0f} s over {tasks} tasks, spread over the workers; before chunks (a task pair per "
        f"batch): {before or 0:.1f} s in-process, plus {2 * count * start_up:.0f} s of start-ups"
    )
    return [
        Figure(
            "P8", f"{count} batches of {rows} rows, validated and ingested", whole, baseline,
            "raw GX over all rows + one parquet part + one materialize", "s", "<= 3x + 30 s",
            whole <= 3 * baseline + 30, note,
        ),
        Figure(
            "P8", f"each extra batch of {rows} rows (slope from {count // 2} to {count} batches)", per_batch,
            baseline / count, "raw, per batch", "s", "< 0.2 s", per_batch < 0.2,
        ),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="4 batches instead of 200")
    for figure in run(parser.parse_args().smoke):
        print(figure)


if __name__ == "__main__":
    main()
