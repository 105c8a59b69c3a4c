"""P4: validation overhead of ``core.validation.validate_frame`` against raw Great Expectations.

Both sides validate the same frame (demo churn data, 1M rows x 10 columns) against the same suite (profiled
from that frame) in the same process, alternately, after a warm-up, and are timed in CPU seconds (robust to
a busy machine; GX validates on one thread). Raw GX is the minimal 1.x code: an ephemeral context, a pandas
data frame asset, ``batch.validate(suite)``. The provider's side adds strict suite loading, its context
settings and the compact, bounded summary. A second scenario validates a perturbed copy (1% of the rows
break a range, a value set and a not-null expectation each), so the failure summary is measured too. Goal:
ours / raw GX <= 1.1 on the best of ``repeats`` runs. The provider's own steps (suite loading and the
summary) are also timed alone: a busy machine cannot blur that figure.

Run: ``.venv/bin/python -m benchmarks.bench_validation [--rows 1000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import pandas as pd

from airflow_mlops_provider.core.validation.profiler import ProfileOptions, profile_suite
from airflow_mlops_provider.core.validation.suites import load_suite, run_suite, summarize, validate_frame
from benchmarks.harness import Figure, best_of
from demo import data as demo_data

ROWS = 1_000_000
REPEATS = 3
SMOKE_ROWS = 2_000
GOAL_RATIO = 1.1


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


def own_steps(df: pd.DataFrame, suite: dict[str, Any]) -> float:
    """CPU seconds of what the provider adds around GX: strict suite loading and the compact summary."""
    gx_result = run_suite(df, load_suite(suite))
    seconds, _ = best_of(lambda: (load_suite(suite), summarize(gx_result, len(df))), 1, time.process_time)
    return seconds


def run(smoke: bool) -> list[Figure]:
    """Time both sides on a passing and a failing frame; one figure per scenario.

    :param smoke: once, on 2,000 rows, instead of ``repeats`` times on 1M rows.
    """
    return measure(SMOKE_ROWS if smoke else ROWS, 1 if smoke else REPEATS)


def measure(rows: int, repeats: int, verbose: bool = False) -> list[Figure]:
    """The P4 figures for ``rows`` rows, best of ``repeats`` alternating runs of each side.

    :param rows: rows of the frame.
    :param repeats: runs of each side per scenario.
    :param verbose: print every timing and the medians.
    """
    frame = demo_data.assign_splits(demo_data.generate_batch(rows, "2024-01-01", days=7, seed=0))
    suite = profile_suite(frame, "bench", ProfileOptions(no_range=("customer_id",)))
    size = f"{len(frame):,} rows x {frame.shape[1]} columns, {len(suite['expectations'])} expectations"
    for side in (raw_gx, provider):  # warm-up: imports and GX's lazy registries
        side(frame.head(1_000), suite)

    figures = []
    for scenario, df, expected in (("passing", frame, True), ("failing", perturb(frame), False)):
        times: dict[str, list[float]] = {"raw GX": [], "provider": []}
        for _ in range(repeats):
            for name, side in (("raw GX", raw_gx), ("provider", provider)):
                seconds, success = best_of(lambda side=side, df=df: side(df, suite), 1, time.process_time)
                assert success is expected, f"{name} disagrees on the {scenario} frame"
                times[name].append(seconds)
        ours, baseline = min(times["provider"]), min(times["raw GX"])
        added = own_steps(df, suite)
        if verbose:
            for name, values in times.items():
                print(f"  {scenario} {name:9s} CPU s: {', '.join(f'{v:.2f}' for v in values)}")
        figures.append(
            Figure(
                goal_id="P4",
                what=f"validate {size}, {scenario}",
                ours=ours,
                baseline=baseline,
                baseline_name="raw GX 1.x: ephemeral context, pandas asset, batch.validate",
                unit="s",
                goal=f"ratio <= {GOAL_RATIO}",
                met=ours <= GOAL_RATIO * baseline,
                note=(
                    f"CPU, best of {repeats}; medians {statistics.median(times['provider']):.2f} s vs "
                    f"{statistics.median(times['raw GX']):.2f} s; the provider's own steps (strict suite "
                    f"loading, bounded summary) {added * 1000:.0f} ms = {added / baseline:.2%} of raw GX"
                ),
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    for figure in measure(args.rows, args.repeats, verbose=True):
        verdict = "met" if figure.met else "NOT met"
        print(
            f"{figure.goal_id} {figure.what}: ours {figure.ours:.2f} s, {figure.baseline_name} "
            f"{figure.baseline:.2f} s, ratio {figure.ratio:.3f} ({figure.goal}: {verdict}); {figure.note}"
        )


if __name__ == "__main__":
    main()
