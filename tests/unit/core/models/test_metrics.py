from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from airflow_mlops_provider.contracts import PROBLEM_TYPES
from airflow_mlops_provider.core.models.metrics import METRIC_DIRECTIONS, compute_metrics, roc_auc


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.1, 0.4, 0.35, 0.8], 0.75),
        ([0.1, 0.2, 0.8, 0.9], 1.0),
        ([0.9, 0.8, 0.2, 0.1], 0.0),
        ([0.5, 0.5, 0.5, 0.5], 0.5),
        ([0.2, 0.5, 0.5, 0.9], 0.875),
    ],
)
def test_roc_auc_known_values(scores: list[float], expected: float) -> None:
    assert roc_auc(np.array([0.0, 0.0, 1.0, 1.0]), np.array(scores)) == pytest.approx(expected)


def test_roc_auc_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.uniform(size=300) + 0.3 * y, 1)  # rounding makes many ties
    assert roc_auc(y, s) == pytest.approx(_pairwise_auc(y, s))


def test_binary_metrics() -> None:
    metrics = compute_metrics("binary", [1, 0, 1, 0], [0.8, 0.3, 0.4, 0.6])
    assert metrics["accuracy"] == 0.5
    assert metrics["roc_auc"] == 0.75
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.4) + math.log(0.4)) / 4
    assert metrics["log_loss"] == pytest.approx(expected)


def test_log_loss_is_clipped_for_certain_wrong_predictions() -> None:
    metrics = compute_metrics("binary", [1, 0], [0.0, 1.0])
    assert math.isfinite(metrics["log_loss"])
    assert metrics["log_loss"] > 30


def test_regression_metrics() -> None:
    metrics = compute_metrics("regression", np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert metrics == pytest.approx({"rmse": 1.0, "mae": 0.5, "r2": 1 - 4 / 5})


def test_r2_of_constant_truth_is_zero() -> None:
    assert compute_metrics("regression", [2.0, 2.0], [1.0, 3.0])["r2"] == 0.0


@pytest.mark.parametrize(
    ("problem_type", "y_true", "y_pred", "message"),
    [
        ("binary", [0, 1], [0.5], "length mismatch"),
        ("regression", [], [], "empty"),
        ("regression", [1.0, np.nan], [1.0, 2.0], "NaN"),
        ("binary", [0, 1], [np.nan, 0.5], "NaN"),
        ("binary", [0, 2], [0.1, 0.9], "only 0 and 1"),
        ("binary", [1, 1], [0.1, 0.9], "both classes"),
        ("multiclass", [1], [1], "unknown problem_type 'multiclass'"),
    ],
)
def test_bad_input_raises(problem_type: str, y_true: list[float], y_pred: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(problem_type, y_true, y_pred)


def test_every_metric_has_a_direction() -> None:
    names = {name for kind in PROBLEM_TYPES for name in compute_metrics(kind, [0, 1], [0.2, 0.7])}
    assert names == set(METRIC_DIRECTIONS)
    assert set(METRIC_DIRECTIONS.values()) == {"minimize", "maximize"}
