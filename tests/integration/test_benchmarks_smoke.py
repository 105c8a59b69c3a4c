"""Every benchmark module runs on tiny sizes (``run(smoke=True)``) and returns sane figures, so none rots.

Each runs in its own interpreter through the runner, as ``make bench`` runs it. The figures' values are
timings of this (busy) machine: only their sanity is checked, never a goal.
"""

from __future__ import annotations

import math

import pytest

from benchmarks.__main__ import GOALS, discover, run_module

#: The goal ids each module may report.
GOALS_OF = {module: goal_id for goal_id, (_, module) in GOALS.items() if module is not None}


@pytest.mark.parametrize("module", discover())
def test_a_benchmark_module_returns_sane_figures_on_tiny_sizes(module: str) -> None:
    result = run_module(module, smoke=True)

    assert result.error is None, result.error
    assert result.figures, f"{module} returned no figure"
    for figure in result.figures:
        assert figure.goal_id == GOALS_OF[module], figure
        assert math.isfinite(figure.ours) and figure.ours > 0, figure
        assert math.isfinite(figure.baseline) and figure.baseline > 0, figure
        assert figure.what and figure.baseline_name and figure.unit and figure.goal, figure
