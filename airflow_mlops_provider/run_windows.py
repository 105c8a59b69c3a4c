"""Templated time windows relative to a DAG run: ``TrainingDatasetOperator``'s ``window_start`` /
``window_end``, and a drift check's ``DriftWindow(start=..., end=...)``."""

from __future__ import annotations


def days_before_run(days: str) -> tuple[str, str]:
    """``(start, end)`` templates of ``[run_after - days, run_after)``.

    ``run_after`` is set for every run, asset-triggered ones included (which have no data interval).

    :param days: a Jinja expression for the number of days, e.g. ``"params.window_days"`` or ``"7"``.
    """
    start = f"{{{{ (dag_run.run_after - macros.timedelta(days={days})).isoformat() }}}}"
    return start, "{{ dag_run.run_after.isoformat() }}"
