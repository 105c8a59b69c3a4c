"""compute_drift gives Evidently's verdicts: the same test, threshold, drift flag and (to rounding) score.

Evidently's DataDriftPreset runs for real on a grid: no shift, small and large mean and scale shifts,
category-mix shifts, NaN/inf, few-valued and binary columns, at sizes that take each of its code paths
(<= 1000 reference rows: KS / chi-square / Z; above: Wasserstein / Jensen-Shannon; above 10 000 rows the
asymptotic KS p-value), with default and explicit settings.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.drift.compute import compute_drift
from airflow_mlops_provider.core.drift.methods import STAT_TESTS
from airflow_mlops_provider.core.drift.spec import DriftConfig

SMALL, MEDIUM, LARGE = (300, 240), (3000, 2000), (15000, 12000)
SIZES = [SMALL, MEDIUM, LARGE]
MIXED: dict[str, Any] = {
    "num_method": "wasserstein",
    "num_threshold": 0.05,
    "cat_method": "z",
    "per_column_method": {"mean_small": "psi", "plan_small": "jensenshannon"},
    "per_column_threshold": {"mean_small": 0.01, "scale_small": 0.02},
}
#: Each size where the settings take a different path: the default choice and the KS p-value depend on
#: the row counts; the binned tests and explicit settings do not (a size per kind of binning suffices).
CASES: list[tuple[tuple[int, int], dict[str, Any]]] = [
    *[(size, {}) for size in SIZES],
    *[(size, {"num_method": "ks", "cat_method": "chisquare", "drift_share": 0.3}) for size in SIZES],
    (SMALL, {"method": "psi"}),
    (LARGE, {"method": "psi"}),
    (MEDIUM, {"method": "jensenshannon", "threshold": 0.05}),
    (SMALL, MIXED),
    (LARGE, MIXED),
]
EVIDENTLY_NAMES = {t.display_name: t.name for t in STAT_TESTS.values()} | {name: name for name in STAT_TESTS}
PLANS = np.array(["basic", "standard", "premium", "family"])


def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """One row per case; ``shift`` 0 is the reference distribution, 1 the shifted current one."""
    mix = np.array([0.4, 0.3, 0.2, 0.1])
    with_gaps = rng.normal(0.05 * shift, 1, n)
    with_gaps[rng.choice(n, n // 20, replace=False)] = rng.choice([np.nan, np.inf, -np.inf], n // 20)
    return pd.DataFrame(
        {
            "no_shift": rng.normal(0, 1, n),
            "mean_small": rng.normal(0.04 * shift, 1, n),
            "mean_large": rng.normal(0.5 * shift, 1, n),
            "scale_small": rng.normal(0, 1 + 0.04 * shift, n),
            "scale_large": rng.normal(0, 1 + 0.8 * shift, n),
            "with_gaps": with_gaps,
            "counts": rng.poisson(6 + 0.3 * shift, n),
            "few_values": rng.choice([0.0, 1.0, 2.5, 4.0], n, p=[0.25 + 0.03 * shift, 0.25, 0.25, 0.25 - 0.03 * shift]),
            "binary_num": (rng.uniform(size=n) < 0.3 + 0.04 * shift).astype(float),
            "small_int": rng.integers(0, 5 + int(shift), n),
            "flag": rng.uniform(size=n) < 0.5 + 0.05 * shift,
            "plan_small": rng.choice(PLANS, n, p=mix + 0.02 * shift * np.array([-1, 0, 0, 1])),
            "plan_large": rng.choice(PLANS, n, p=mix + 0.2 * shift * np.array([-1, 0, 0, 1])),
            "plan_new": rng.choice(PLANS[: 3 + int(shift)], n),
        }
    )


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, settings: dict[str, Any]) -> dict[str, Any]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(**settings)], include_tests=True).run(current, reference).dict()
    columns = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            columns[config["column"]] = {"method": EVIDENTLY_NAMES[config["method"]], "threshold": config["threshold"]}
            columns[config["column"]]["score"] = metric["value"]
        else:
            share = metric["value"]["share"]
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        if test["id"] == "drift":
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
        else:
            dataset_drift = test["status"] == "FAIL"  # "share of drifted columns < drift_share" failed
    return {"columns": columns, "share": share, "dataset_drift": dataset_drift}


@pytest.mark.parametrize(
    ("sizes", "settings"), CASES, ids=[f"{n}x{m}-{','.join(sorted(s)) or 'defaults'}" for (n, m), s in CASES]
)
def test_verdicts_match_evidently(sizes: tuple[int, int], settings: dict[str, Any]) -> None:
    rng = np.random.default_rng(sizes[0])
    reference, current = _frame(rng, sizes[0], 0.0), _frame(rng, sizes[1], 1.0)

    ours = compute_drift(reference, current, config=DriftConfig(**settings))
    theirs = _evidently(reference, current, settings)

    assert [c.column for c in ours.columns] == list(current.columns)
    for column in ours.columns:
        expected = theirs["columns"][column.column]
        got = {"method": column.method, "threshold": column.threshold, "drifted": column.drifted}
        assert got == {k: expected[k] for k in got}, column.column
        assert column.score == pytest.approx(expected["score"], rel=1e-9, abs=1e-12, nan_ok=True), column.column
    assert ours.share == theirs["share"]
    assert ours.dataset_drift == theirs["dataset_drift"]


def test_the_grid_has_both_verdicts_in_every_size() -> None:
    """Guard the parity test against a grid where every column trivially drifts (or none does)."""
    for n_ref, n_cur in SIZES:
        rng = np.random.default_rng(n_ref)
        result = compute_drift(_frame(rng, n_ref, 0.0), _frame(rng, n_cur, 1.0))
        flags = {c.column: c.drifted for c in result.columns}
        assert flags["mean_large"] and flags["scale_large"] and flags["plan_large"]
        assert not flags["no_shift"]
