"""What every benchmark returns, and how ``make bench`` times things.

A benchmark module exposes ``run(smoke: bool) -> list[Figure]``: ``smoke=True`` runs it once on tiny sizes
(the test suite does, so no benchmark rots); ``smoke=False`` is the real measurement. Each figure holds our
number and its baseline, measured in the same run, so the ratio means something on any machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One row of ``benchmarks/RESULTS.md``.

    :param goal_id: the goal it measures (``P1`` ... ``P9``).
    :param what: what was measured, with its size.
    :param ours: our figure, in ``unit``.
    :param baseline: the baseline's figure, in ``unit``, measured in the same run.
    :param baseline_name: what the baseline is.
    :param unit: ``s`` (lower is better) or a rate such as ``rows/s`` (higher is better).
    :param goal: the goal, as written in RESULTS.md (``ratio <= 1.2``).
    :param met: whether the goal holds for this figure.
    :param note: anything a reader needs (a breakdown, the library limit).
    """

    goal_id: str
    what: str
    ours: float
    baseline: float
    baseline_name: str
    unit: str
    goal: str
    met: bool
    note: str = ""

    @property
    def ratio(self) -> float:
        """Ours over the baseline, oriented so that 1.0 is parity and a lower time or a higher rate is better
        for us: for times it is ours/baseline, for rates ours/baseline too (the goal says which side)."""
        return self.ours / self.baseline if self.baseline else float("inf")


def best_of(run: Callable[[], Any], repeats: int, clock: Callable[[], float] = time.perf_counter) -> tuple[float, Any]:
    """The best time of ``repeats`` runs of ``run``, and the last result.

    :param run: what to time.
    :param repeats: how many times.
    :param clock: ``time.perf_counter`` (wall) or ``time.process_time`` (CPU, robust to a busy machine).
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        started = clock()
        result = run()
        best = min(best, clock() - started)
    return best, result
