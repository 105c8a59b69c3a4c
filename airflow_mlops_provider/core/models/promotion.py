"""Champion/challenger promotion policy: a pure decision from two scores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from airflow_mlops_provider.contracts import PromotionRecord
from airflow_mlops_provider.core.models.metrics import METRIC_DIRECTIONS, METRIC_RANGES, check_metric

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
        if self.metric not in METRIC_RANGES:
            raise ValueError(f"Unknown metric {self.metric!r}; choose one of {sorted(METRIC_RANGES)}")
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', not {self.direction!r}")
        if not math.isfinite(self.min_improvement) or self.min_improvement < 0:
            raise ValueError(f"min_improvement must be a finite number >= 0, not {self.min_improvement}")
        if self.min_value is not None:
            low, high = METRIC_RANGES[self.metric]
            if (
                not math.isfinite(self.min_value)
                or (low is not None and self.min_value < low)
                or (high is not None and self.min_value > high)
            ):
                span = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                raise ValueError(f"min_value must be a finite {self.metric} in {span}, not {self.min_value}")

    @classmethod
    def parse(
        cls, metric: str, direction: str | None, min_value: object, min_improvement: object, problem_type: str
    ) -> PromotionPolicy:
        """A policy from possibly templated values (strings), checked against the problem type.

        :param metric: the holdout metric.
        :param direction: ``maximize`` or ``minimize``; ``None``: the metric's natural direction.
        :param min_value: the bar; ``None``, ``""`` or ``"None"`` for none.
        :param min_improvement: the margin over the champion.
        :param problem_type: ``binary`` or ``regression``: the metric must be one of its metrics.
        :raises ValueError: an unknown metric or problem type, a metric of another problem type, or a bar
            or margin that is not a finite number in the metric's range.
        """
        check_metric(metric, problem_type)
        return cls(
            metric=metric,
            direction=(direction or METRIC_DIRECTIONS[metric]),  # type: ignore[arg-type]
            min_value=None if min_value in (None, "", "None") else _number("min_value", min_value),
            min_improvement=_number("min_improvement", min_improvement),
        )


def _number(name: str, value: object) -> float:
    """``value`` as a float, or a clear error naming the setting."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None


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
