"""The drift statistics against scipy and numpy, column kinds, settings and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from airflow_mlops_provider.core.drift.compute import DriftResult, UnsupportedColumnError, column_kind, compute_drift
from airflow_mlops_provider.core.drift.spec import DriftConfig
from airflow_mlops_provider.core.drift.stats import (
    SMIRNOV_VECTORIZED_MIN_N,
    NumericSample,
    _histogram_sorted,
    ks_pvalue,
    kstwo_sf,
    smirnov_sf,
)


@pytest.fixture
def tied_samples() -> tuple[np.ndarray, np.ndarray]:
    """Large samples with many ties (rounded values), so the merged-order tie handling matters."""
    rng = np.random.default_rng(5)
    return np.round(rng.normal(0, 1, 12_000), 2), np.round(rng.normal(0.02, 1.1, 11_000), 2)


def test_asymptotic_ks_pvalue_is_scipys(tied_samples: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = tied_samples
    expected = stats.ks_2samp(ref, cur)
    sample = NumericSample(ref, cur)
    assert sample.ks_statistic() == expected.statistic
    assert ks_pvalue(sample) == expected.pvalue


@pytest.mark.parametrize("n", [SMIRNOV_VECTORIZED_MIN_N, 50_000, 200_000])
@pytest.mark.parametrize("n_x_squared", [2.2, 10.0, 369.0])
def test_vectorized_smirnov_is_scipys_exact_sum(n: int, n_x_squared: float) -> None:
    """The range of (n, statistic) where the KS p-value takes scipy's O(n) Smirnov loop, both ends included."""
    x = float(np.sqrt(n_x_squared / n))
    assert smirnov_sf(n, x) == pytest.approx(special.smirnov(n, x), rel=1e-12)
    assert kstwo_sf(x, n) == pytest.approx(stats.kstwo.sf(x, n), rel=1e-12)


@pytest.mark.parametrize(
    ("n", "x"), [(SMIRNOV_VECTORIZED_MIN_N - 1, 0.02), (50_000, 0.001), (50_000, 0.6), (50_000, 0.1)]
)
def test_ks_survival_outside_the_vectorized_range_is_scipys_bit_for_bit(n: int, x: float) -> None:
    assert kstwo_sf(x, n) == stats.kstwo.sf(x, n)


def test_numeric_sample_drops_nan_and_infinities_from_both_ends() -> None:
    values = np.array([np.nan, 3.0, -np.inf, 1.0, np.inf, 2.0, np.nan, -np.inf])
    sample = NumericSample(values, np.array([5.0, np.inf]))
    assert sample.ref_sorted.tolist() == [1.0, 2.0, 3.0]
    assert (sample.n_reference, sample.cur_sorted.tolist()) == (3, [5.0])


@pytest.mark.parametrize(
    ("values", "distinct"),
    [([1.0] * 50 + [2.0] * 50, 2), (list(range(5)) * 20, 5), (list(range(6)) * 20, 6), (np.arange(1000.0), 1000)],
)
def test_distinct_counts_are_exact_up_to_the_limit(values: list[float], distinct: int) -> None:
    sample = NumericSample(np.asarray(values, dtype=np.float64), np.asarray(values, dtype=np.float64))
    counted = sample.distinct(limit=5)
    assert counted == distinct if distinct <= 5 else counted > 5


def test_wasserstein_is_scipys(tied_samples: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = tied_samples
    assert NumericSample(ref, cur).wasserstein() == stats.wasserstein_distance(ref, cur)


def test_histogram_of_sorted_values_is_numpys() -> None:
    values = np.sort(np.array([0.0, 0.1, 0.1, 0.2, 0.3, 0.3, 0.7, 1.0, 1.0, 1.0]))
    edges = np.linspace(0.0, 1.0, 11)  # values fall exactly on edges, including the closed last one
    assert _histogram_sorted(values, edges).tolist() == np.histogram(values, edges)[0].tolist()


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([0.5, 1.5, 2.5]), "num"),
        (np.arange(100), "num"),
        (np.arange(100) % 7, "cat"),
        (np.array([True, False] * 5), "cat"),
        (pd.Categorical(["a", "b", "a", "b"]), "cat"),
        (np.array(["x", "y", "x", "x", "y", "x"], dtype=object), "cat"),
    ],
)
def test_column_kinds_follow_evidently(values: object, kind: str) -> None:
    assert column_kind(pd.Series(values, name="c")) == kind


@pytest.mark.parametrize(
    "values",
    [
        np.array([f"free text {i}" for i in range(10)], dtype=object),
        pd.date_range("2026-01-01", periods=5),
        np.arange(20, dtype=np.uint8),
    ],
    ids=["text", "datetime", "uint8"],
)
def test_untestable_columns_are_refused(values: object) -> None:
    with pytest.raises(UnsupportedColumnError):
        column_kind(pd.Series(values, name="c"))


def test_settings_precedence_per_column_over_kind_over_all() -> None:
    config = DriftConfig(
        method="psi", cat_method="chisquare", per_column_method={"b": "jensenshannon"}, threshold=0.2, num_threshold=0.3
    )
    assert (config.method_for("a", "num"), config.threshold_for("a", "num")) == ("psi", 0.3)
    assert (config.method_for("c", "cat"), config.threshold_for("c", "cat")) == ("chisquare", 0.2)
    assert config.method_for("b", "cat") == "jensenshannon"
    assert DriftConfig.from_dict(config.to_dict()) == config
    rendered = {"drift_share": "0.3", "threshold": "", "per_column_threshold": {"a": "0.2"}}  # templated params
    assert DriftConfig.from_dict(rendered) == DriftConfig(drift_share=0.3, per_column_threshold={"a": 0.2})


def test_bad_settings_and_columns_are_errors() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50), "plan": ["a", "b"] * 25, "empty": np.nan})
    with pytest.raises(ValueError, match="unknown drift method"):
        DriftConfig(method="kolmogorov")
    with pytest.raises(ValueError, match="does not apply"):
        compute_drift(frame, frame, ["plan"], DriftConfig(method="ks"))
    with pytest.raises(ValueError, match="missing"):
        compute_drift(frame, frame.drop(columns="x"), ["x"])
    with pytest.raises(ValueError, match="no values"):
        compute_drift(frame, frame, ["empty"])


def test_result_summary_round_trips_and_counts_the_share() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000), "c": rng.normal(0, 1, 2000)})
    current = reference.assign(a=reference["a"] + 1.0)
    result = compute_drift(reference, current, config=DriftConfig(drift_share=0.3))
    assert result.drifted_columns == ["a"]
    assert result.share == pytest.approx(1 / 3) and result.dataset_drift
    assert DriftResult.from_dict(result.to_dict()) == result


def test_too_few_rows_give_no_verdict() -> None:
    from airflow_mlops_provider.core.drift.spec import DEFAULT_MIN_ROWS, NotEnoughDataError

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 500)})
    with pytest.raises(ValueError, match=r"the reference has 1 row\(s\): a drift verdict needs at least min_rows=30"):
        compute_drift(frame.head(1), frame + 100)  # a 100-sigma shift, but one reference row proves nothing
    with pytest.raises(NotEnoughDataError, match=r"the current window has 29 row\(s\), fewer than min_rows=30"):
        compute_drift(frame, frame.head(DEFAULT_MIN_ROWS - 1) + 100)
    gaps = frame.assign(x=np.where(np.arange(500) < 480, np.nan, frame["x"]))
    with pytest.raises(ValueError, match=r"column 'x' has 20 value\(s\) in the current frame after dropping NaN/inf"):
        compute_drift(frame, gaps)
    assert compute_drift(frame.head(5), frame.head(5) + 100, config=DriftConfig(min_rows=5)).dataset_drift


def test_a_threshold_out_of_the_picked_tests_range_is_refused() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 200)})  # <= 1000 rows: KS, a p-value
    with pytest.raises(ValueError, match=r"drift threshold 3\.0 \(column 'x'\) is not usable with method 'ks'"):
        compute_drift(frame, frame, config=DriftConfig(threshold=3.0))
