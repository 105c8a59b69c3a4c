"""The drift tests Evidently 0.7 offers, by name: what a ``DriftConfig`` may choose.

Nothing heavy is imported, so DAG files and triggers validate settings at parse time; the statistics
themselves are in :mod:`airflow_mlops_provider.core.drift.stats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Kind = Literal["num", "cat"]
NUMERIC: Kind = "num"
CATEGORICAL: Kind = "cat"


@dataclass(frozen=True)
class StatTest:
    """One drift test as Evidently defines it.

    :param name: Evidently's registered name (``method=`` value).
    :param display_name: the name Evidently shows in reports.
    :param kinds: the column kinds it accepts when chosen explicitly.
    :param default_threshold: the threshold when none is given.
    :param direction: ``"p<="`` or ``"p<"`` for p-values (drift when the p-value is below the threshold),
        ``">="`` for distances (drift when the distance reaches it).
    :param max_threshold: thresholds must be in ``(0, max_threshold)``: 1 for p-values and the
        Jensen-Shannon distance (at most sqrt(ln 2)), unbounded for the other distances.
    """

    name: str
    display_name: str
    kinds: frozenset[Kind]
    default_threshold: float
    direction: Literal["p<=", "p<", ">="]
    max_threshold: float = math.inf

    def check_threshold(self, threshold: float, where: str = "") -> None:
        """Refuse a threshold this test cannot use: NaN, infinite, zero or negative, or above its range.

        :param threshold: the threshold.
        :param where: which setting or column it is, for the message.
        :raises ValueError: with the accepted range.
        """
        if not 0 < threshold < self.max_threshold:
            what = "p-value" if self.direction != ">=" else "distance"
            upper = "1" if self.max_threshold == 1 else "a finite number"
            raise ValueError(
                f"drift threshold {threshold}{where} is not usable with method {self.name!r} (a {what}): "
                f"it must be greater than 0 and less than {upper}"
            )

    def drifted(self, score: float, threshold: float) -> bool:
        """Tell whether ``score`` means drift at ``threshold``.

        :param score: the test's p-value or distance.
        :param threshold: the significance level or distance threshold.
        """
        if self.direction == "p<=":
            return bool(score <= threshold)
        if self.direction == "p<":
            return bool(score < threshold)
        return bool(score >= threshold)


STAT_TESTS: dict[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", "K-S p_value", frozenset({NUMERIC}), 0.05, "p<=", 1.0),
        StatTest("wasserstein", "Wasserstein distance (normed)", frozenset({NUMERIC}), 0.1, ">="),
        StatTest("psi", "PSI", frozenset({NUMERIC, CATEGORICAL}), 0.1, ">="),
        StatTest("jensenshannon", "Jensen-Shannon distance", frozenset({NUMERIC, CATEGORICAL}), 0.1, ">=", 1.0),
        StatTest("chisquare", "chi-square p_value", frozenset({CATEGORICAL}), 0.05, "p<", 1.0),
        StatTest("z", "Z-test p_value", frozenset({CATEGORICAL}), 0.05, "p<", 1.0),
    )
}
