"""DriftTrigger: serialization, one event per drift episode across polls and restarts, the async loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _trigger(current_uri: str, data: DriftData, tmp_path: Path, **kwargs: Any) -> DriftTrigger:
    return DriftTrigger(
        current_uri=current_uri,
        reference_uri=data.reference,
        exclude_columns=NOT_FEATURES,
        state_uri=str(tmp_path / "state.json"),
        poll_interval=0.05,
        **kwargs,
    )


def _events(trigger: DriftTrigger, seconds: float) -> list[TriggerEvent]:
    """Run the trigger's loop for ``seconds`` and collect what it yields."""
    events: list[TriggerEvent] = []

    async def consume() -> None:
        async for event in trigger.run():
            events.append(event)

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), seconds)

    asyncio.run(bounded())
    return events


def test_serialize_round_trips_with_json_kwargs(data: DriftData, tmp_path: Path) -> None:
    trigger = _trigger(
        data.drifted, data, tmp_path, time_column="event_timestamp", lookback_seconds=3600.0, max_events=3,
        drift_config={"num_method": "ks", "per_column_threshold": {"plan": 0.2}}, report_prefix=str(tmp_path),
    )  # fmt: skip
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert isinstance(rebuilt, BaseEventTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuilt.serialize())


def test_no_drift_no_event(data: DriftData, tmp_path: Path) -> None:
    assert _events(_trigger(data.clean, data, tmp_path), seconds=1.5) == []


def test_drift_fires_exactly_once_across_polls_and_a_restart(data: DriftData, tmp_path: Path) -> None:
    events = _events(_trigger(data.drifted, data, tmp_path), seconds=2.0)
    assert len(events) == 1
    payload = events[0].payload
    assert payload["dataset_drift"] and "monthly_charges" in payload["drifted_columns"]
    assert payload["reference_uri"] == data.reference and payload["current_uri"] == data.drifted

    restarted = _trigger(data.drifted, data, tmp_path)  # a triggerer restart: same kwargs, same state_uri
    assert restarted.poll() is None


def test_a_new_episode_fires_again_but_never_for_a_reported_window(data: DriftData, tmp_path: Path) -> None:
    current = str(tmp_path / "current.parquet")
    trigger = _trigger(current, data, tmp_path)
    assert trigger.poll() is None  # no data yet: nothing to check
    steps = [(data.drifted, True), (data.drifted, False), (data.clean, False), (data.drifted, False)]
    steps.append((data.drifted_later, True))  # a drifted window never reported: a new episode
    for source, fires in steps:
        shutil.copyfile(source, current)
        assert (trigger.poll() is not None) == fires, source


def test_the_report_of_a_fired_window_is_stored(data: DriftData, tmp_path: Path) -> None:
    payload = _trigger(data.drifted, data, tmp_path, report_prefix=str(tmp_path / "reports")).poll()
    assert payload is not None
    report = Path(payload["report_uri"])
    assert report.name == "drift_report.html" and report.parent.name == payload["window_id"]
    assert "Value Drift for column monthly_charges" in report.read_text()
    summary = json.loads((report.parent / "drift_summary.json").read_text())
    assert summary["drifted_columns"] == payload["drifted_columns"]


def test_cooldown_holds_back_the_next_episode(data: DriftData, tmp_path: Path) -> None:
    current = str(tmp_path / "current.parquet")
    trigger = _trigger(current, data, tmp_path, cooldown_seconds=3600)
    fired = []
    for source in (data.drifted, data.clean, data.drifted):
        shutil.copyfile(source, current)
        fired.append(trigger.poll() is not None)
    assert fired == [True, False, False]


def test_an_unreachable_store_is_retried_at_the_next_poll(
    data: DriftData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger = _trigger(data.drifted, data, tmp_path)
    outcomes: list[Any] = [ConnectionError("cannot reach S3 endpoint"), {"dataset_drift": True}]
    monkeypatch.setattr(trigger, "poll", lambda: _raise_or_return(outcomes.pop(0)) if outcomes else None)
    assert [event.payload for event in _events(trigger, seconds=0.5)] == [{"dataset_drift": True}]


def _raise_or_return(outcome: Any) -> Any:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def test_a_directory_of_part_files_is_read_as_one_window(data: DriftData, tmp_path: Path) -> None:
    parts = tmp_path / "customer_stats"
    parts.mkdir()
    shutil.copyfile(data.clean, parts / "part-a.parquet")
    trigger = _trigger(f"{parts}/", data, tmp_path, time_column="event_timestamp", lookback_seconds=43_200.0)
    assert trigger.poll() is None
    shutil.copyfile(data.drifted_later, parts / "part-b.parquet")  # a newer day: the last half of it is checked
    payload = trigger.poll()
    assert payload is not None and payload["dataset_drift"] and 500 < payload["current_rows"] < 1000
