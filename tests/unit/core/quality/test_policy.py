"""QualityPolicy: the floor of a window, and clear errors for every bad setting."""

from __future__ import annotations

import math

import pytest

from airflow_mlops_provider.core.quality.policy import QualityPolicy


def test_the_floor_is_the_stricter_bound_in_the_metrics_direction() -> None:
    auc = QualityPolicy.parse("roc_auc", None, "0.7", "0.05", "50", "binary")
    assert (auc.direction, auc.min_value, auc.max_drop, auc.min_labels) == ("maximize", 0.7, 0.05, 50)
    assert auc.floor(0.8) == pytest.approx(0.75) and auc.floor(0.72) == 0.7
    assert auc.meets(0.75, 0.75) and not auc.meets(0.7499, 0.75)
    rmse = QualityPolicy.parse("rmse", "", "None", 2, 10, "regression")
    assert (rmse.direction, rmse.min_value) == ("minimize", None)
    assert rmse.floor(3.0) == 5.0 and rmse.meets(4.9, 5.0) and not rmse.meets(5.1, 5.0)
    assert QualityPolicy("log_loss", "minimize", min_value=0.6, max_drop=0.1).floor(0.4) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("roc_auc", None, "", "", 30, "binary"), "needs min_value, max_drop or both"),
        (("rmse", None, 1, None, 30, "binary"), "does not apply to problem_type 'binary'"),
        (("auc", None, 0.7, None, 30, "binary"), "Unknown metric 'auc'"),
        (("roc_auc", None, 0.7, None, 30, "multiclass"), "unknown problem_type"),
        (("roc_auc", "up", 0.7, None, 30, "binary"), "direction must be"),
        (("roc_auc", None, "nan", None, 30, "binary"), "min_value must be a finite number"),
        (("roc_auc", None, 1.5, None, 30, "binary"), r"min_value must be a finite roc_auc in \[0.0, 1.0\]"),
        (("roc_auc", None, "high", None, 30, "binary"), "min_value must be a number, not 'high'"),
        (("roc_auc", None, None, "inf", 30, "binary"), "max_drop must be a finite number"),
        (("roc_auc", None, None, -0.1, 30, "binary"), "max_drop must be a finite number >= 0"),
        (("roc_auc", None, 0.7, None, 0, "binary"), "min_labels must be an integer of at least 1"),
        (("roc_auc", None, 0.7, None, 2.5, "binary"), "min_labels must be an integer"),
        (("roc_auc", None, 0.7, None, "many", "binary"), "min_labels must be a number"),
    ],
)
def test_bad_settings_are_clear_errors(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QualityPolicy.parse(*args)  # type: ignore[arg-type]


def test_max_drop_without_a_holdout_score_is_an_error() -> None:
    policy = QualityPolicy("roc_auc", max_drop=0.1)
    for missing in (None, math.nan):
        with pytest.raises(ValueError, match="max_drop needs the champion's holdout roc_auc"):
            policy.floor(missing)
