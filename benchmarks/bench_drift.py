"""P2: CPU time of ``core.drift.compute_drift`` against scipy's KS test, with Evidently's verdicts.

For each size (rows in the reference and in the current frame, 20 numeric columns: 8 unshifted, 4 with a
small and 4 with a large mean shift, 2 with a small and 2 with a large scale shift), the same process
times, in CPU seconds (robust to a busy machine):

- scipy: ``scipy.stats.ks_2samp(reference, current, axis=0)``, the baseline (best of ``repeats``);
- ours: ``compute_drift`` with Evidently's default tests, and with ``method="ks"`` (best of ``repeats``);
- Evidently: ``Report([DataDriftPreset(...)], include_tests=True).run(current, reference)``, once, for
  the verdicts (every column's drift flag and the dataset's must be identical to ours).

Goal: ours <= 1x scipy's KS time, verdicts identical, at 100k and 1M rows. OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE, when set on this machine, slow numpy's BLAS; to measure without them, unset both for
this command only.

Run: ``.venv/bin/python -m benchmarks.bench_drift [--rows 100000 1000000] [--repeats 3] [--no-evidently]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from airflow_mlops_provider.core.drift.compute import DriftResult, compute_drift
from airflow_mlops_provider.core.drift.spec import DriftConfig
from benchmarks.harness import Figure, best_of

COLUMNS = 20
SHIFTS = [("none", 0.0, 1.0)] * 8 + [("mean", 0.01, 1.0), ("mean", 0.2, 1.0)] * 4 + [("scale", 0.0, 1.02)] * 2
SHIFTS += [("scale", 0.0, 1.5)] * 2
SETTINGS: list[dict[str, Any]] = [{}, {"method": "ks"}]
SIZES = (100_000, 1_000_000)
SMOKE_ROWS = 2_000
GOAL_RATIO = 1.0


def frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and the current frame, ``rows`` rows each."""
    rng = np.random.default_rng(seed)
    names = [f"{kind}_{i}" for i, (kind, _, _) in enumerate(SHIFTS)]
    reference = pd.DataFrame(rng.normal(size=(rows, COLUMNS)), columns=names)
    shift = np.array([s[1] for s in SHIFTS])
    scale = np.array([s[2] for s in SHIFTS])
    current = pd.DataFrame(rng.normal(size=(rows, COLUMNS)) * scale + shift, columns=names)
    return reference, current


def evidently_verdicts(reference: pd.DataFrame, current: pd.DataFrame, settings: dict[str, Any]) -> dict[str, Any]:
    """Run the preset; return each column's drift flag and the dataset verdict."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(**settings)], include_tests=True).run(current, reference).dict()
    verdicts: dict[str, Any] = {}
    for test in snapshot["tests"]:
        column = test["metric_config"]["params"].get("column")
        verdicts[column or "dataset"] = test["status"] == "FAIL"
    return verdicts


def ours_verdicts(result: DriftResult) -> dict[str, Any]:
    """The same shape as :func:`evidently_verdicts`."""
    return {c.column: c.drifted for c in result.columns} | {"dataset": result.dataset_drift}


def bench(rows: int, repeats: int, with_evidently: bool) -> list[Figure]:
    """Time and compare every setting on one size.

    :param rows: rows in each frame.
    :param repeats: runs of each timed side; the best counts.
    :param with_evidently: also run Evidently once per setting and require identical verdicts.
    """
    reference, current = frames(rows)
    arrays = (reference.to_numpy(), current.to_numpy())
    ks_seconds, _ = best_of(partial(stats.ks_2samp, *arrays, axis=0), repeats, time.process_time)
    figures = []
    for settings in SETTINGS:
        run = partial(compute_drift, reference, current, config=DriftConfig(**settings))
        seconds, result = best_of(run, repeats, time.process_time)
        note = f"drifted {len(result.drifted_columns)}/{COLUMNS}"
        identical = True
        if with_evidently:
            ev_seconds, verdicts = best_of(
                partial(evidently_verdicts, reference, current, settings), 1, time.process_time
            )
            identical = verdicts == ours_verdicts(result)
            note += (
                f"; Evidently {ev_seconds:.2f} s = {ev_seconds / ks_seconds:.1f}x KS; verdicts identical: {identical}"
            )
        figures.append(
            Figure(
                goal_id="P2",
                what=f"compute_drift ({settings.get('method', 'default tests')}), {rows:,} rows x {COLUMNS} columns",
                ours=seconds,
                baseline=ks_seconds,
                baseline_name="scipy ks_2samp(axis=0), CPU s",
                unit="s",
                goal=f"ratio <= {GOAL_RATIO}, verdicts identical to Evidently's",
                met=seconds <= GOAL_RATIO * ks_seconds and identical,
                note=note,
            )
        )
    return figures


def run(smoke: bool) -> list[Figure]:
    """The P2 figures: every setting at 100k and 1M rows (best of 3), or once at a tiny size.

    :param smoke: one run of each side at :data:`SMOKE_ROWS` rows, Evidently included.
    """
    if smoke:
        return bench(SMOKE_ROWS, repeats=1, with_evidently=True)
    return [figure for rows in SIZES for figure in bench(rows, repeats=3, with_evidently=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently (minutes at 1M rows)")
    args = parser.parse_args()
    blas_env = {key: os.environ[key] for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if key in os.environ}
    print(f"{COLUMNS} numeric columns; BLAS env: {blas_env or 'unset'}; CPU seconds, best of {args.repeats}")
    for rows in args.rows:
        for figure in bench(rows, args.repeats, not args.no_evidently):
            print(
                f"{figure.what}: ours {figure.ours:.2f} s, scipy KS {figure.baseline:.2f} s, "
                f"ratio {figure.ratio:.2f} (met: {figure.met}) | {figure.note}",
                flush=True,
            )


if __name__ == "__main__":
    main()
