"""The champion/challenger policy, as a pure function."""

from __future__ import annotations

import json
import math

import pytest

from airflow_mlops_provider.core.models.promotion import PromotionPolicy, decide_promotion

AUC = PromotionPolicy(metric="roc_auc", direction="maximize", min_value=0.7, min_improvement=0.01)
RMSE = PromotionPolicy(metric="rmse", direction="minimize", min_value=5.0, min_improvement=0.0)


def test_first_model_meeting_the_bar_becomes_champion() -> None:
    decision = decide_promotion(0.8, None, AUC)
    assert decision.promote
    assert "no scorable champion" in decision.reason


def test_first_model_below_the_bar_is_rejected() -> None:
    decision = decide_promotion(0.65, None, AUC)
    assert not decision.promote
    assert "at least 0.7" in decision.reason


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [(0.85, 0.80, True), (0.805, 0.80, False), (0.80, 0.80, False), (0.75, 0.80, False)],
)
def test_challenger_must_beat_champion_by_the_margin(challenger: float, champion: float, promote: bool) -> None:
    decision = decide_promotion(challenger, champion, AUC)
    assert decision.promote is promote
    assert decision.challenger_score == challenger and decision.champion_score == champion


def test_minimizing_metric_prefers_lower_values() -> None:
    assert decide_promotion(3.0, 4.0, RMSE).promote
    assert not decide_promotion(4.5, 4.0, RMSE).promote
    rejected = decide_promotion(6.0, None, RMSE)
    assert not rejected.promote and "at most 5.0" in rejected.reason


def test_equal_scores_never_promote_even_with_zero_margin() -> None:
    decision = decide_promotion(4.0, 4.0, RMSE)
    assert not decision.promote
    assert "required > 0" in decision.reason


def test_non_finite_challenger_is_rejected() -> None:
    assert not decide_promotion(math.nan, 0.7, AUC).promote


def test_decision_record_carries_its_policy_and_is_json() -> None:
    decision = decide_promotion(0.9, 0.8, AUC)
    record = decision.to_record()
    assert record == {
        "promote": True,
        "reason": decision.reason,
        "metric": "roc_auc",
        "challenger_score": 0.9,
        "champion_score": 0.8,
        "policy": {"metric": "roc_auc", "direction": "maximize", "min_value": 0.7, "min_improvement": 0.01},
    }
    assert json.loads(json.dumps(record)) == record


@pytest.mark.parametrize("kwargs", [{"direction": "up"}, {"min_improvement": -1.0}])
def test_invalid_policy_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PromotionPolicy(metric="roc_auc", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_value": math.nan}, r"min_value must be a finite roc_auc in \[0.0, 1.0\], not nan"),
        ({"min_value": math.inf}, "not inf"),
        ({"min_value": 1.01}, "not 1.01"),
        ({"min_value": -0.01}, "not -0.01"),
        ({"min_improvement": math.nan}, "min_improvement must be a finite number >= 0, not nan"),
        ({"min_improvement": math.inf}, "not inf"),
        ({"metric": "f1"}, "Unknown metric 'f1'"),
    ],
)
def test_policy_numbers_must_be_finite_and_in_the_metrics_range(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PromotionPolicy(**{"metric": "roc_auc", **settings})  # type: ignore[arg-type]


def test_range_bounds_are_inclusive_and_follow_the_metric() -> None:
    assert PromotionPolicy(metric="roc_auc", min_value=0.0).min_value == 0.0
    assert PromotionPolicy(metric="roc_auc", min_value=1.0).min_value == 1.0
    assert PromotionPolicy(metric="rmse", direction="minimize", min_value=1e6).min_value == 1e6
    assert PromotionPolicy(metric="r2", min_value=-3.0).min_value == -3.0
    with pytest.raises(ValueError, match=r"finite r2 in \[-inf, 1.0\]"):
        PromotionPolicy(metric="r2", min_value=1.5)


def test_parse_reads_templated_strings_and_the_metrics_direction() -> None:
    policy = PromotionPolicy.parse("rmse", None, "None", "0.5", "regression")
    assert (policy.direction, policy.min_value, policy.min_improvement) == ("minimize", None, 0.5)
    assert PromotionPolicy.parse("roc_auc", None, "", 0, "binary").min_value is None
    assert PromotionPolicy.parse("roc_auc", "minimize", "0.7", "0", "binary").direction == "minimize"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("roc_auc", None, "nan", "0", "binary"), "min_value must be a finite roc_auc"),
        (("roc_auc", None, "high", "0", "binary"), "min_value must be a number, not 'high'"),
        (("roc_auc", None, None, "a lot", "binary"), "min_improvement must be a number, not 'a lot'"),
        (("roc_auc", None, None, None, "binary"), "min_improvement must be a number, not None"),
        (("rmse", None, None, "0", "binary"), "metric 'rmse' does not apply to problem_type 'binary'"),
        (("roc_auc", None, None, "0", "multiclass"), "unknown problem_type 'multiclass'"),
        (("roc_auc", "upward", None, "0", "binary"), "direction must be 'maximize' or 'minimize'"),
    ],
)
def test_parse_refuses_what_a_template_can_render_wrong(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PromotionPolicy.parse(*args)  # type: ignore[arg-type]


def test_a_margin_exactly_met_promotes_and_a_bar_exactly_met_passes() -> None:
    policy = PromotionPolicy(metric="roc_auc", min_value=0.5, min_improvement=0.25)
    assert decide_promotion(0.75, 0.5, policy).promote  # gain == min_improvement (exact in binary)
    assert not decide_promotion(0.75, 0.5000001, policy).promote
    assert decide_promotion(0.5, None, policy).promote  # score == min_value
    assert not decide_promotion(0.4999999, None, policy).promote
