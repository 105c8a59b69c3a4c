"""The drift tests Evidently 0.7 offers, by name: what a ``DriftConfig`` may choose.

Nothing heavy is imported, so DAG files and triggers validate settings at parse time; the statistics
themselves are in :mod:`airflow_mlops_provider.core.drift.stats`.
"""

from __future__ import annotations

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
    """

    name: str
    display_name: str
    kinds: frozenset[Kind]
    default_threshold: float
    direction: Literal["p<=", "p<", ">="]

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
        StatTest("ks", "K-S p_value", frozenset({NUMERIC}), 0.05, "p<="),
        StatTest("wasserstein", "Wasserstein distance (normed)", frozenset({NUMERIC}), 0.1, ">="),
        StatTest("psi", "PSI", frozenset({NUMERIC, CATEGORICAL}), 0.1, ">="),
        StatTest("jensenshannon", "Jensen-Shannon distance", frozenset({NUMERIC, CATEGORICAL}), 0.1, ">="),
        StatTest("chisquare", "chi-square p_value", frozenset({CATEGORICAL}), 0.05, "p<"),
        StatTest("z", "Z-test p_value", frozenset({CATEGORICAL}), 0.05, "p<"),
    )
}
