"""Champion/challenger promotion policy: a pure decision from two scores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from airflow_mlops_provider.contracts import PromotionRecord

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class PromotionPolicy:
    """When a challenger replaces the champion.

    :param metric: the holdout metric to compare, e.g. ``roc_auc`` or ``rmse``.
    :param direction: ``maximize`` or ``minimize``.
    :param min_value: the absolute bar the challenger must meet (at least, or at most when minimizing).
    :param min_improvement: how much better than the champion the challenger must be, in metric units.
    """

    metric: str
    direction: Direction = "maximize"
    min_value: float | None = None
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', not {self.direction!r}")
        if self.min_improvement < 0:
            raise ValueError(f"min_improvement must be >= 0, not {self.min_improvement}")


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of :func:`decide_promotion`, with everything needed to explain it."""

    promote: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    policy: PromotionPolicy

    def to_record(self) -> PromotionRecord:
        """The decision's part of the promotion record (JSON-serializable, for XCom and tags)."""
        return PromotionRecord(
            promote=self.promote,
            reason=self.reason,
            metric=self.policy.metric,
            challenger_score=self.challenger_score,
            champion_score=self.champion_score,
            policy=asdict(self.policy),
        )


def decide_promotion(
    challenger_score: float, champion_score: float | None, policy: PromotionPolicy
) -> PromotionDecision:
    """Decide whether the challenger becomes champion.

    :param challenger_score: the challenger's metric on the holdout set.
    :param champion_score: the champion's metric on the same holdout set; ``None`` when there is no champion.
    :param policy: the promotion policy.
    """
    sign = 1.0 if policy.direction == "maximize" else -1.0
    name = policy.metric

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(promote, reason, challenger_score, champion_score, policy)

    if not math.isfinite(challenger_score):
        return decision(False, f"challenger {name} is {challenger_score}, not a finite number")
    if policy.min_value is not None and sign * (challenger_score - policy.min_value) < 0:
        bound = "at least" if sign > 0 else "at most"
        return decision(
            False,
            f"challenger {name}={challenger_score:.4f} misses the bar: must be {bound} {policy.min_value}",
        )
    if champion_score is None or not math.isfinite(champion_score):
        return decision(True, f"no scorable champion; challenger {name}={challenger_score:.4f} meets the bar")
    gain = sign * (challenger_score - champion_score)
    if gain < policy.min_improvement or gain <= 0:
        required = f">= {policy.min_improvement}" if policy.min_improvement else "> 0"
        return decision(
            False,
            f"challenger {name}={challenger_score:.4f} vs champion {champion_score:.4f}: "
            f"improvement {gain:+.4f}, required {required}",
        )
    return decision(
        True,
        f"challenger {name}={challenger_score:.4f} beats champion {champion_score:.4f} by {gain:+.4f}",
    )
