"""Validation overhead of ``core.validation.validate_frame`` against raw Great Expectations.

Both sides validate the same frame (demo churn data, 1M rows x 10 columns by default) against the same
suite (profiled from that frame) in the same process, alternately, after a warm-up. The best and the
median of ``--repeats`` runs are compared, in CPU time (robust to a busy machine) and in wall time. Raw GX is the
minimal 1.x code: an ephemeral context, a pandas data frame asset, ``batch.validate(suite)``. The
provider's side adds strict suite loading, its context settings and the compact summary. A second
scenario validates a perturbed copy, so the failure summary is measured too. Goal: ratio <= 1.1. The
provider's own steps are also timed alone, which a busy machine cannot blur.

Run: ``.venv/bin/python -m benchmarks.bench_validation [--rows 1000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from airflow_mlops_provider.core.validation.profiler import ProfileOptions, profile_suite
from airflow_mlops_provider.core.validation.suites import (
    DEFAULT_SAMPLE_SIZE,
    load_suite,
    run_suite,
    summarize,
    validate_frame,
)
from demo import data as demo_data


def raw_gx(df: pd.DataFrame, suite: dict[str, Any]) -> bool:
    """Validate with GX alone, as its documentation does it (progress bars off, as in a task log)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("frame")
        .get_batch(batch_parameters={"dataframe": df})
    )
    return bool(batch.validate(gx.ExpectationSuite(**suite)).success)


def provider(df: pd.DataFrame, suite: dict[str, Any]) -> bool:
    """Validate through the provider's core function."""
    return validate_frame(df, suite).success


def perturb(df: pd.DataFrame) -> pd.DataFrame:
    """A copy that breaks a range, a value set and a not-null expectation on 1% of the rows each."""
    broken = df.copy()
    rows = broken.index[::100]
    broken.loc[rows, "tenure_months"] = -1
    broken.loc[rows, "plan"] = "gold"
    broken.loc[rows, "usage_gb"] = None
    return broken


def timed(
    run: Callable[[pd.DataFrame, dict[str, Any]], bool], df: pd.DataFrame, suite: dict[str, Any]
) -> tuple[float, float]:
    """``(cpu seconds, wall seconds)`` of one run; GX validates on one thread, so CPU time is robust to a
    busy machine, where wall time is not."""
    cpu, wall = time.process_time(), time.perf_counter()
    run(df, suite)
    return time.process_time() - cpu, time.perf_counter() - wall


def added_work(df: pd.DataFrame, suite: dict[str, Any]) -> float:
    """CPU seconds of what the provider adds around GX: strict suite loading and the compact summary."""
    gx_result = run_suite(df, load_suite(suite))
    cpu = time.process_time()
    summarize(gx_result, len(df), DEFAULT_SAMPLE_SIZE)
    load_suite(suite)
    return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    frame = demo_data.assign_splits(demo_data.generate_batch(args.rows, "2024-01-01", days=7, seed=0))
    suite = profile_suite(frame, "bench", ProfileOptions(no_range=("customer_id",)))
    print(f"{len(frame):,} rows x {frame.shape[1]} columns, {len(suite['expectations'])} expectations")
    for run in (raw_gx, provider):  # warm-up: imports and GX's lazy registries
        run(frame.head(1_000), suite)

    for scenario, df, expected in (("passing", frame, True), ("failing", perturb(frame), False)):
        assert raw_gx(df, suite) is expected and provider(df, suite) is expected
        times: dict[str, list[tuple[float, float]]] = {"raw GX": [], "provider": []}
        for _ in range(args.repeats):
            for name, run in (("raw GX", raw_gx), ("provider", provider)):
                times[name].append(timed(run, df, suite))
        for name, values in times.items():
            cpu, wall = zip(*values, strict=True)
            print(
                f"  {scenario}  {name:9s} CPU best {min(cpu):6.2f}s median {statistics.median(cpu):6.2f}s | "
                f"wall best {min(wall):6.2f}s median {statistics.median(wall):6.2f}s"
            )
        for label, index in (("CPU", 0), ("wall", 1)):
            ratios = [
                pick(v[index] for v in times["provider"]) / pick(v[index] for v in times["raw GX"])
                for pick in (min, statistics.median)
            ]
            print(f"  {scenario}  ratio provider / raw GX, {label}: best {ratios[0]:.3f}, median {ratios[1]:.3f}")
        added = added_work(df, suite)
        raw_median = statistics.median(v[0] for v in times["raw GX"])
        print(f"  {scenario}  the provider's own steps: {added * 1000:.0f} ms CPU = {added / raw_median:.2%} of raw GX")


if __name__ == "__main__":
    main()
