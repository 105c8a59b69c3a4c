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
