"""CPU time of ``core.drift.compute_drift`` against scipy's KS test and Evidently's ``DataDriftPreset``.

For each size (rows in the reference and in the current frame, 20 numeric columns: 8 unshifted, 4 with a
small and 4 with a large mean shift, 2 with a small and 2 with a large scale shift), the same process
times, in CPU seconds (robust to a busy machine):

- scipy: ``scipy.stats.ks_2samp(reference, current, axis=0)``, the baseline (best of ``--repeats``);
- ours: ``compute_drift`` with Evidently's default tests, and with ``method="ks"`` (best of ``--repeats``);
- Evidently: ``Report([DataDriftPreset(...)], include_tests=True).run(current, reference)``, once each.

It prints the ratios and whether every column's verdict and the dataset verdict are identical to
Evidently's. Goal: ours <= 2x scipy KS, verdicts identical. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when
set on this machine, slow numpy's BLAS; to measure without them, unset both for this command only.

Run: ``.venv/bin/python -m benchmarks.bench_drift [--rows 100000 1000000] [--repeats 3] [--no-evidently]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from airflow_mlops_provider.core.drift.compute import DriftResult, compute_drift
from airflow_mlops_provider.core.drift.spec import DriftConfig

COLUMNS = 20
SHIFTS = [("none", 0.0, 1.0)] * 8 + [("mean", 0.01, 1.0), ("mean", 0.2, 1.0)] * 4 + [("scale", 0.0, 1.02)] * 2
SHIFTS += [("scale", 0.0, 1.5)] * 2
SETTINGS: list[dict[str, Any]] = [{}, {"method": "ks"}]


def frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and the current frame, ``rows`` rows each."""
    rng = np.random.default_rng(seed)
    names = [f"{kind}_{i}" for i, (kind, _, _) in enumerate(SHIFTS)]
    reference = pd.DataFrame(rng.normal(size=(rows, COLUMNS)), columns=names)
    shift = np.array([s[1] for s in SHIFTS])
    scale = np.array([s[2] for s in SHIFTS])
    current = pd.DataFrame(rng.normal(size=(rows, COLUMNS)) * scale + shift, columns=names)
    return reference, current


def cpu(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The best CPU time of ``repeats`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.process_time()
        result = run()
        best = min(best, time.process_time() - started)
    return best, result


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


def bench(rows: int, repeats: int, with_evidently: bool) -> None:
    """Time and compare everything on one size, and print a block of results."""
    reference, current = frames(rows)
    ks_seconds, _ = cpu(partial(stats.ks_2samp, reference.to_numpy(), current.to_numpy(), axis=0), repeats)
    print(f"\n{rows:>9,} rows   scipy ks_2samp(axis=0): {ks_seconds:8.2f} s")
    for settings in SETTINGS:
        seconds, result = cpu(partial(compute_drift, reference, current, config=DriftConfig(**settings)), repeats)
        line = (
            f"  {settings.get('method', 'default tests'):>13}: ours {seconds:7.2f} s = {seconds / ks_seconds:5.2f}x KS"
        )
        if with_evidently:
            ev_seconds, verdicts = cpu(partial(evidently_verdicts, reference, current, settings), 1)
            line += f" | Evidently {ev_seconds:8.2f} s = {ev_seconds / ks_seconds:5.2f}x KS"
            line += f" | ours/Evidently {seconds / ev_seconds:6.3f}"
            line += f" | verdicts identical: {verdicts == ours_verdicts(result)}"
        print(f"{line} | drifted {len(result.drifted_columns)}/{COLUMNS}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently (minutes at 1M rows)")
    args = parser.parse_args()
    blas_env = {key: os.environ[key] for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if key in os.environ}
    print(f"{COLUMNS} numeric columns; BLAS env: {blas_env or 'unset'}; CPU seconds, best of {args.repeats}")
    for rows in args.rows:
        bench(rows, args.repeats, not args.no_evidently)


if __name__ == "__main__":
    main()
