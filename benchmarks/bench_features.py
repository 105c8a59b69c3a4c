"""Feature store overhead of the provider against raw Feast 0.67 calls made in the same run.

A fresh copy of ``dags/feature_repo`` (file offline store, sqlite online store) is filled with demo rows,
written as parquet parts of 10k rows. Three measurements, each the best of 3 runs
taken alternately with its baseline, in wall and CPU time (CPU time is steadier on a busy machine):

1. Ingestion plus materialization of a 10k-row batch: ``FeatureIngestionOperator.execute`` (read,
   check, part write, footer scan, online write of the batch's newest rows) against raw = ``pq.read_table``
   + ``pq.write_table`` of the part + ``store.materialize`` over the same window. Goal: ratio <= 1.1.
2. A training set for a 20k-row spine: ``point_in_time_join`` over Feast (unique keys, order and
   policy restored) against raw = ``get_historical_features(spine, service).to_df()``; and the whole
   ``TrainingDatasetOperator.execute`` (spine read, join, split, parquet write, digest). Goal: <= 1.1.
3. The append alone (check + part write of the batch) with 100k and with 1M rows already stored. Goal: flat
   append time (ratio <= 1.1). Measurement 1 is taken at both sizes too.

``run(smoke=True)`` takes each once on tiny sizes.
Run: ``.venv/bin/python -m benchmarks.bench_features [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from airflow_mlops_provider.core.features.batches import conform_batch, load_batch
from airflow_mlops_provider.core.features.feast_repo import apply_repo, feature_view, load_repo, open_store
from airflow_mlops_provider.core.features.offline_source import materialization_window, part_uri, write_part
from airflow_mlops_provider.core.features.point_in_time import MissingFeaturesPolicy, point_in_time_join
from airflow_mlops_provider.core.io.storage import ObjectStore
from benchmarks.harness import Figure
from demo import data as demo_data

REPO = Path(__file__).resolve().parents[1] / "dags" / "feature_repo"
VIEW, SERVICE = "customer_stats", "churn_v1"
START = pd.Timestamp("2024-01-01T00:00Z")
Timing = tuple[float, float]


def timed(run: Callable[[], Any]) -> Timing:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def best_of(repeats: int, ours: Callable[[int], Any], raw: Callable[[int], Any]) -> tuple[Timing, Timing]:
    """Run both sides alternately ``repeats`` times (after one warm-up each); the best wall and CPU times."""
    ours(-1), raw(-1)
    runs = [(timed(partial(ours, i)), timed(partial(raw, i))) for i in range(repeats)]
    ours_best, raw_best = ((min(r[side][0] for r in runs), min(r[side][1] for r in runs)) for side in (0, 1))
    return ours_best, raw_best


class Clock:
    """Accumulates the CPU time spent inside calls it wraps (Feast's own work), to tell it from ours.

    :param function: the function to time.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - started

    def outside(self, run: Callable[[], Any]) -> float:
        """CPU seconds of ``run`` spent outside the wrapped function."""
        self.seconds = 0.0
        return timed(run)[1] - self.seconds


class Bench:
    """A fresh feature repo in a temp dir, with the ``feast_default`` connection pointing at it.

    :param root: the temp dir.
    :param part_rows: rows per stored part.
    """

    def __init__(self, root: Path, part_rows: int) -> None:
        self.root = root
        self.part_rows = part_rows
        self.repo = root / "feature_repo"
        shutil.copytree(REPO, self.repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
        os.environ.pop("MLOPS_FEATURE_DATA_URI", None)
        os.environ["AIRFLOW_CONN_FEAST_DEFAULT"] = json.dumps(
            {"conn_type": "feast", "extra": {"repo_path": str(self.repo)}}
        )
        self.store = open_store(str(self.repo))
        apply_repo(self.store, load_repo(self.store, str(self.repo)))
        self.view = feature_view(self.store, VIEW)
        self.stored = 0
        self.day = 0

    def fill(self, rows: int) -> None:
        """Store demo rows until ``rows`` are stored, one part per ``part_rows``, one day per part."""
        while self.stored < rows:
            batch = demo_data.generate_batch(self.part_rows, START + pd.Timedelta(days=self.day), seed=self.day)
            write_part(conform_batch(batch, self.view), part_uri(self.view.source_uri, f"existing-{self.day}"))
            self.stored += self.part_rows
            self.day += 1

    def batch_file(self, name: str, rows: int) -> str:
        """A new raw batch (the day after the stored data) as a parquet file."""
        path = self.root / "landing" / f"{name}.parquet"
        path.parent.mkdir(exist_ok=True)
        demo_data.generate_batch(rows, START + pd.Timedelta(days=self.day), seed=10_000 + self.day).to_parquet(path)
        return str(path)


def ingestion(bench: Bench, rows: int, repeats: int) -> tuple[Timing, Timing, tuple[float, float]]:
    """Best timings of both sides, and their best CPU time outside the online write (ours:
    :func:`~airflow_mlops_provider.core.features.online.write_online`, raw: ``FeatureStore.materialize``)."""
    from feast import FeatureStore

    from airflow_mlops_provider.core.features import ingestion as core_ingestion
    from airflow_mlops_provider.operators.features import FeatureIngestionOperator

    def ours(i: int) -> None:
        context: Any = {"outlet_events": defaultdict(lambda: SimpleNamespace(extra={}))}
        FeatureIngestionOperator(
            task_id="ingest", feature_view=VIEW, batch_uri=bench.batch_file(f"ours{i}", rows)
        ).execute(context)

    def raw(i: int) -> None:
        table = pq.read_table(bench.batch_file(f"raw{i}", rows))
        pq.write_table(table, part_uri(bench.view.source_uri, f"raw{i}"))
        start, end = materialization_window(table, "event_timestamp", bench.view.source_uri)
        bench.store.materialize(start.to_pydatetime(), end.to_pydatetime(), [VIEW])

    ours_best, raw_best = best_of(repeats, ours, raw)
    clock, online = Clock(FeatureStore.materialize), Clock(core_ingestion.write_online)
    FeatureStore.materialize = lambda *args, **kwargs: clock(*args, **kwargs)  # type: ignore[method-assign]
    core_ingestion.write_online = online
    try:
        runs = [(online.outside(partial(ours, 100 + i)), clock.outside(partial(raw, 100 + i))) for i in range(repeats)]
    finally:
        FeatureStore.materialize = clock.function  # type: ignore[method-assign]
        core_ingestion.write_online = online.function
    return ours_best, raw_best, (min(r[0] for r in runs), min(r[1] for r in runs))


def training_set(bench: Bench, rows: int, repeats: int) -> tuple[tuple[Timing, Timing], Timing, float]:
    """Best timings of the join and of Feast alone, of the whole operator, and the join's CPU outside Feast."""
    from airflow_mlops_provider.operators.features import TrainingDatasetOperator

    spine_path = bench.root / "spine.parquet"
    stored = pd.concat([pd.read_parquet(p) for p in Path(bench.view.source_uri).glob("part-existing-*.parquet")])
    spine = stored.sample(rows, random_state=0)[["customer_id", "event_timestamp"]]
    spine = spine.assign(event_timestamp=spine["event_timestamp"] + pd.Timedelta(hours=1), churned=0)
    spine.to_parquet(spine_path)
    service = bench.store.get_feature_service(SERVICE)
    features = {f.name: str(f.dtype) for p in service.feature_view_projections for f in p.features}
    policy = MissingFeaturesPolicy("drop", max_fraction=1.0)

    @Clock
    def fetch(keys: pd.DataFrame) -> pd.DataFrame:
        return bench.store.get_historical_features(entity_df=keys, features=service).to_df()

    def ours(_: int) -> None:
        point_in_time_join(spine, fetch, ["customer_id"], "event_timestamp", features, policy)

    def raw(_: int) -> None:
        bench.store.get_historical_features(entity_df=spine, features=service).to_df()

    def operator() -> None:
        op = TrainingDatasetOperator(
            task_id="training_set", feature_service=SERVICE, spine_uri=str(spine_path), label_columns=["churned"],
            output_uri=str(bench.root / "training_set.parquet"), max_missing_fraction=1.0,
        )  # fmt: skip
        context: Any = {"ti": SimpleNamespace(run_id="bench")}
        op.execute(context)

    join = best_of(repeats, ours, raw)
    whole = min(timed(operator) for _ in range(repeats))
    outside = min(fetch.outside(partial(ours, 0)) for _ in range(repeats))
    return join, whole, outside


#: The append takes about 10 ms of wall time: best of 3 varied by 15% between two quiet runs (0.91x, 1.13x).
APPEND_REPEATS = 5


def append_time(bench: Bench, rows: int, repeats: int, stored: int) -> float:
    """Best wall seconds of the append alone (check + part write) of one batch, with ``stored`` rows stored."""
    batch = load_batch(bench.batch_file(f"scale{stored}", rows))
    view = feature_view(bench.store, VIEW)

    def append(i: int) -> None:
        write_part(conform_batch(batch, view), part_uri(view.source_uri, f"scale{stored}-{i}"))

    append(-1)
    best = min(timed(partial(append, i))[0] for i in range(repeats))
    for i in range(-1, repeats):  # the parts were for timing only: the stored rows stay as counted
        ObjectStore().delete(part_uri(view.source_uri, f"scale{stored}-{i}"))
    return best


def run(smoke: bool) -> list[Figure]:
    """P3's figures: ingest and materialize one batch against raw Feast calls at two stored sizes, the append's
    growth between them, and the training set's join against raw Feast.

    :param smoke: once, on tiny sizes (a 500-row batch, 5k and 50k rows stored); else the goal's sizes.
    """
    batch_rows, spine_rows, part_rows, repeats = (500, 500, 5_000, 1) if smoke else (10_000, 20_000, 10_000, 3)
    sizes = (5_000, 50_000) if smoke else (100_000, 1_000_000)
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        bench = Bench(Path(tmp), part_rows)
        appends = {}
        for stored in sizes:
            bench.fill(stored)
            ours, raw, (ours_outside, raw_outside) = ingestion(bench, batch_rows, repeats)
            figures.append(
                Figure(
                    "P3", f"ingest + materialize a {batch_rows:,}-row batch, {stored:,} rows stored", ours[0], raw[0],
                    "pq.read_table + pq.write_table + store.materialize", "s", "ratio <= 1.1", ours[0] <= 1.1 * raw[0],
                    f"CPU outside the online write: ours {ours_outside:.3f} s, raw {raw_outside:.3f} s",
                )
            )  # fmt: skip
            appends[stored] = append_time(bench, batch_rows, repeats * APPEND_REPEATS, stored)
        small, large = sizes
        figures.append(
            Figure(
                "P3", f"append (check + part write) of a {batch_rows:,}-row batch at {large:,} vs {small:,} stored",
                appends[large], appends[small], f"the same append at {small:,} stored", "s", "flat: ratio <= 1.1",
                appends[large] <= 1.1 * appends[small],
            )
        )  # fmt: skip
        join, whole, outside = training_set(bench, spine_rows, repeats)
        figures.append(
            Figure(
                "P3", f"training set join, {spine_rows:,}-row spine", join[0][0], join[1][0],
                "get_historical_features(spine, service).to_df()", "s", "ratio <= 1.1", join[0][0] <= 1.1 * join[1][0],
                f"CPU of the join outside Feast: {outside:.3f} s; the whole operator: {whole[0]:.3f} s",
            )
        )  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, once")
    for figure in run(parser.parse_args().smoke):
        print(figure)


if __name__ == "__main__":
    main()
