"""DriftSensor defers to DriftTrigger with its spec, resumes with the trigger's summary, renders its spec's
templates, and pokes without deferring."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftWindow, EpisodePolicy
from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.sensors.drift import DriftSensor
from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data

Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _sensor(current_uri: str, data: DriftData, **kwargs: Any) -> DriftSensor:
    deferrable = kwargs.pop("deferrable", True)
    kwargs.setdefault("episode_policy", EpisodePolicy(cooldown_seconds=60.0))
    spec = DriftCheckSpec(current_uri=current_uri, reference_uri=data.reference, exclude_columns=NOT_FEATURES, **kwargs)
    return DriftSensor(task_id="wait_for_drift", spec=spec, deferrable=deferrable, poke_interval=30, timeout=3600)


def test_defers_to_a_drift_trigger_and_resumes_with_its_summary(
    data: DriftData, task_context: Context, tmp_path: Path
) -> None:
    sensor = _sensor(
        data.drifted, data, state_uri=str(tmp_path / "state.json"), report_prefix=str(tmp_path / "reports")
    )
    context = task_context("wait_for_drift")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, DriftTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 3600
    kwargs = trigger.serialize()[1]
    assert (kwargs["spec"], kwargs["poll_interval"]) == (sensor.spec.to_dict(), 30)

    outcome = asyncio.run(trigger.poll())  # what the triggerer would send back
    assert outcome is not None and outcome.fired
    event = dict(outcome.summary)
    assert sensor.execute_complete(context, event) == event
    link = context["ti"].xcom[DriftReportLink().xcom_key]
    assert link == Path(event["report_uri"]).as_uri() and Path(event["report_uri"]).exists()


def test_the_spec_and_its_window_are_rendered(data: DriftData, tmp_path: Path) -> None:
    sensor = _sensor("{{ params.current }}", data, window=DriftWindow("event_timestamp", start="{{ params.start }}"))
    sensor.render_template_fields({"params": {"current": data.clean, "start": "2026-01-08T12:00:00"}})
    assert sensor.spec.current_uri == data.clean
    assert sensor.spec.window == DriftWindow("event_timestamp", start="2026-01-08T12:00:00")


@pytest.mark.parametrize(("current", "done"), [("drifted", True), ("clean", False)])
def test_pokes_in_the_worker_when_not_deferrable(
    data: DriftData, task_context: Context, current: str, done: bool
) -> None:
    sensor = _sensor(getattr(data, current), data, deferrable=False)
    result = sensor.poke(task_context("wait_for_drift"))
    assert result.is_done is done
    assert (result.xcom_value is not None) is done


def test_pokes_keep_the_episode_across_pokes_and_wait_for_data(
    data: DriftData, task_context: Context, tmp_path: Path
) -> None:
    current = tmp_path / "current.parquet"
    sensor = _sensor(str(current), data, deferrable=False, episode_policy=EpisodePolicy(debounce=2))
    context = task_context("wait_for_drift")
    assert not sensor.poke(context).is_done  # no data yet
    done = []
    for source in (data.drifted, data.drifted_later):  # debounced: the second drifted window in a row
        shutil.copyfile(source, current)
        done.append(sensor.poke(context).is_done)
    assert done == [False, True]
