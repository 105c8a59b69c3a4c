"""DriftSensor defers to DriftTrigger, resumes with the trigger's summary, and pokes without deferring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.sensors.drift import DriftSensor
from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data

Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _sensor(current_uri: str, data: DriftData, **kwargs: Any) -> DriftSensor:
    return DriftSensor(
        task_id="wait_for_drift",
        current_uri=current_uri,
        reference_uri=data.reference,
        trigger_options={"exclude_columns": NOT_FEATURES, "cooldown_seconds": 60.0},
        poke_interval=30,
        timeout=3600,
        **kwargs,
    )


def test_defers_to_a_drift_trigger_and_resumes_with_its_summary(
    data: DriftData, task_context: Context, tmp_path: Path
) -> None:
    sensor = _sensor(data.drifted, data, state_uri=str(tmp_path / "state.json"))
    context = task_context("wait_for_drift")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, DriftTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 3600
    kwargs = trigger.serialize()[1]
    assert (kwargs["current_uri"], kwargs["poll_interval"], kwargs["cooldown_seconds"]) == (data.drifted, 30, 60.0)

    event = trigger.poll()  # what the triggerer would send back
    assert event is not None
    event["report_uri"] = str(tmp_path / "report" / "drift_report.html")
    assert sensor.execute_complete(context, event) == event
    link = context["ti"].xcom[DriftReportLink().xcom_key]
    assert link == (tmp_path / "report" / "drift_report.html").as_uri()


@pytest.mark.parametrize(("current", "done"), [("drifted", True), ("clean", False)])
def test_pokes_in_the_worker_when_not_deferrable(
    data: DriftData, task_context: Context, current: str, done: bool
) -> None:
    sensor = _sensor(getattr(data, current), data, deferrable=False)
    result = sensor.poke(task_context("wait_for_drift"))
    assert result.is_done is done
    assert (result.xcom_value is not None) is done
