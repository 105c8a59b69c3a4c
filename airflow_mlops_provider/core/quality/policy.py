"""When live model quality has decayed: an absolute floor and/or a drop from the champion's holdout score."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from airflow_mlops_provider.core.models.metrics import METRIC_DIRECTIONS, METRIC_RANGES, check_metric
from airflow_mlops_provider.core.models.promotion import Direction

#: The fewest labelled predictions a window needs for a verdict, by default.
DEFAULT_MIN_LABELS = 30


@dataclass(frozen=True)
class QualityPolicy:
    """The bar a model's live metric must meet in each window.

    :param metric: the live metric, e.g. ``roc_auc`` or ``rmse``.
    :param direction: ``maximize`` or ``minimize``.
    :param min_value: the absolute floor (a ceiling when minimizing); ``None`` for none.
    :param max_drop: how far the live metric may fall below the champion's holdout score (recorded at
        promotion), in metric units; ``None`` for no such bound.
    :param min_labels: the fewest labelled predictions a window needs for a verdict.
    :raises ValueError: an unknown metric or direction, no bound at all, a floor outside the metric's range,
        a negative or non-finite drop, or ``min_labels`` below 1.
    """

    metric: str
    direction: Direction = "maximize"
    min_value: float | None = None
    max_drop: float | None = None
    min_labels: int = DEFAULT_MIN_LABELS

    def __post_init__(self) -> None:
        if self.metric not in METRIC_RANGES:
            raise ValueError(f"Unknown metric {self.metric!r}; choose one of {sorted(METRIC_RANGES)}")
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', not {self.direction!r}")
        if self.min_value is None and self.max_drop is None:
            raise ValueError("a quality policy needs min_value, max_drop or both")
        if self.min_value is not None:
            low, high = METRIC_RANGES[self.metric]
            value = self.min_value
            if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
                span = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                raise ValueError(f"min_value must be a finite {self.metric} in {span}, not {value}")
        if self.max_drop is not None and not (math.isfinite(self.max_drop) and self.max_drop >= 0):
            raise ValueError(f"max_drop must be a finite number >= 0, not {self.max_drop}")
        if isinstance(self.min_labels, bool) or not isinstance(self.min_labels, int) or self.min_labels < 1:
            raise ValueError(f"min_labels must be an integer of at least 1, not {self.min_labels!r}")

    @classmethod
    def parse(
        cls,
        metric: str,
        direction: str | None,
        min_value: object,
        max_drop: object,
        min_labels: object,
        problem_type: str,
    ) -> QualityPolicy:
        """A policy from possibly templated values (strings), checked against the problem type.

        :param metric: the live metric.
        :param direction: ``maximize`` or ``minimize``; ``None`` or ``""``: the metric's natural direction.
        :param min_value: the floor; ``None``, ``""`` or ``"None"`` for none.
        :param max_drop: the allowed drop from the holdout score; ``None``, ``""`` or ``"None"`` for none.
        :param min_labels: labels a window needs for a verdict.
        :param problem_type: ``binary`` or ``regression``: the metric must be one of its metrics.
        :raises ValueError: see the class; also a metric of another problem type, or a value that is not a number.
        """
        check_metric(metric, problem_type)
        labels = _number("min_labels", min_labels)
        if not labels.is_integer():
            raise ValueError(f"min_labels must be an integer, not {min_labels!r}")
        return cls(
            metric=metric,
            direction=(direction or METRIC_DIRECTIONS[metric]),  # type: ignore[arg-type]
            min_value=_optional_number("min_value", min_value),
            max_drop=_optional_number("max_drop", max_drop),
            min_labels=int(labels),
        )

    @property
    def sign(self) -> float:
        """``1`` when higher is better, ``-1`` when lower is."""
        return 1.0 if self.direction == "maximize" else -1.0

    def floor(self, holdout_score: float | None) -> float:
        """The bar of a window: the stricter of ``min_value`` and the holdout score minus ``max_drop``.

        :param holdout_score: the champion's holdout score in :attr:`metric`; needed when ``max_drop`` is set.
        :raises ValueError: ``max_drop`` is set and the holdout score is unknown or not finite.
        """
        bars = [] if self.min_value is None else [self.min_value]
        if self.max_drop is not None:
            if holdout_score is None or not math.isfinite(holdout_score):
                raise ValueError(f"max_drop needs the champion's holdout {self.metric}, and it has none recorded")
            bars.append(holdout_score - self.sign * self.max_drop)
        return max(bars) if self.sign > 0 else min(bars)

    def meets(self, value: float, floor: float) -> bool:
        """Tell whether a live ``value`` meets ``floor`` (at least, or at most when minimizing).

        :param value: the window's metric.
        :param floor: :meth:`floor`'s result.
        """
        return self.sign * (value - floor) >= 0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict."""
        return asdict(self)


def _number(name: str, value: object) -> float:
    """``value`` as a finite float, or a clear error naming the setting."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return number


def _optional_number(name: str, value: object) -> float | None:
    return None if value in (None, "", "None") else _number(name, value)
