"""days_before_run: the templates render to the window before the run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import jinja2

from airflow_mlops_provider.run_windows import days_before_run


def test_templates_render_the_days_before_run_after() -> None:
    run_after = datetime(2026, 11, 22, 6, 0, tzinfo=timezone.utc)
    context = {"dag_run": SimpleNamespace(run_after=run_after), "macros": SimpleNamespace(timedelta=timedelta)}
    start, end = (
        jinja2.Template(t).render(params={"window_days": 7}, **context) for t in days_before_run("params.window_days")
    )
    assert (start, end) == ("2026-11-15T06:00:00+00:00", "2026-11-22T06:00:00+00:00")
