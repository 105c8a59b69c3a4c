"""DriftTrigger: serialization, a cheap poll that runs the check (in a child process) only when the inputs
changed, one event per drift episode across polls and restarts, and the async loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_mlops_provider.core.drift.pipeline import run_drift_check
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftConfig, DriftOutcome, DriftWindow, EpisodePolicy
from airflow_mlops_provider.core.io.storage import ObjectStore, StorageConfig
from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data
from tests.fixtures.s3_server import free_port, set_storage_connection


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _spec(current_uri: str, data: DriftData, tmp_path: Path, **kwargs: Any) -> DriftCheckSpec:
    kwargs.setdefault("state_uri", str(tmp_path / "state.json"))
    return DriftCheckSpec(current_uri=current_uri, reference_uri=data.reference, exclude_columns=NOT_FEATURES, **kwargs)


def _trigger(current_uri: str, data: DriftData, tmp_path: Path, **kwargs: Any) -> DriftTrigger:
    return DriftTrigger(spec=_spec(current_uri, data, tmp_path, **kwargs), poll_interval=0.05)


def _poll(trigger: DriftTrigger) -> DriftOutcome | None:
    return asyncio.run(trigger.poll())


def _fired(trigger: DriftTrigger) -> bool:
    outcome = _poll(trigger)
    assert outcome is not None, "the inputs changed, so the check ran"
    return outcome.fired


#: How long the loop keeps running once ``until()`` holds: the event follows the check's last write, later
#: under load.
SETTLE_SECONDS = 3.0


def _events(
    trigger: DriftTrigger, until: Callable[[], bool] = lambda: False, timeout: float = 60
) -> list[TriggerEvent]:
    """Run the trigger's loop until ``until()`` holds (or ``timeout`` seconds), then a few polls more; return
    what it yielded. An error that ends the loop is raised."""
    events: list[TriggerEvent] = []

    async def consume() -> None:
        async for event in trigger.run():
            events.append(event)

    async def bounded() -> None:
        task = asyncio.create_task(consume())
        for _ in range(int(timeout / 0.05)):
            if until() or task.done():
                break
            await asyncio.sleep(0.05)
        await asyncio.wait({task}, timeout=SETTLE_SECONDS)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(bounded())
    return events


def _rewrite(source: str, target: str) -> None:
    """Replace ``target`` with ``source``'s content, with a new modification time even on a coarse clock."""
    shutil.copyfile(source, target)
    stat = os.stat(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_serialize_round_trips_with_json_kwargs(data: DriftData, tmp_path: Path) -> None:
    spec = _spec(
        data.drifted, data, tmp_path, window=DriftWindow("event_timestamp", lookback_seconds=3600.0),
        drift_config=DriftConfig(num_method="ks", per_column_threshold={"plan": 0.2}),
        episode_policy=EpisodePolicy(max_events=3), report_prefix=str(tmp_path),
    )  # fmt: skip
    trigger = DriftTrigger(spec=spec, poll_interval=30, storage_conn_id=None)
    classpath, kwargs = trigger.serialize()
    assert kwargs == {"spec": spec.to_dict(), "poll_interval": 30, "mlflow_conn_id": "mlflow_default",
                      "storage_conn_id": None}  # fmt: skip
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert isinstance(rebuilt, BaseEventTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuilt.serialize())


def test_the_trigger_runs_the_same_check_as_the_operator_and_the_sensor(data: DriftData, tmp_path: Path) -> None:
    outcome = _poll(_trigger(data.drifted, data, tmp_path, state_uri=str(tmp_path / "child.json")))
    here = run_drift_check(
        _spec(data.drifted, data, tmp_path, state_uri=str(tmp_path / "here.json")), ObjectStore(), lambda: None
    )
    assert outcome == here


def test_no_drift_no_event(data: DriftData, tmp_path: Path) -> None:
    checked = (tmp_path / "state.json").exists  # the check's last write
    assert _events(_trigger(data.clean, data, tmp_path), until=checked) == []
    assert checked()


def test_drift_fires_exactly_once_across_polls_and_a_restart(data: DriftData, tmp_path: Path) -> None:
    events = _events(_trigger(data.drifted, data, tmp_path), until=(tmp_path / "state.json").exists)
    assert len(events) == 1
    payload = events[0].payload
    assert payload["dataset_drift"] and "monthly_charges" in payload["drifted_columns"]
    assert payload["reference_uri"] == data.reference and payload["current_uri"] == data.drifted

    restarted = _trigger(data.drifted, data, tmp_path)  # a triggerer restart: same kwargs, same state_uri
    assert _poll(restarted) is None  # the window was judged before the restart: not compared, never fired


def test_unchanged_inputs_are_not_checked_again(data: DriftData, tmp_path: Path) -> None:
    current, reports = str(tmp_path / "current.parquet"), tmp_path / "reports"
    shutil.copyfile(data.drifted, current)
    trigger = _trigger(current, data, tmp_path, report_prefix=str(reports))
    assert _fired(trigger)
    assert len(list(reports.glob("*/drift_report.html"))) == 1  # the fired window's report
    shutil.rmtree(reports)
    assert _poll(trigger) is None  # same listing, same reference: no check ...
    assert not reports.exists()  # ... so nothing was written
    _rewrite(data.drifted, current)  # the same rows, rewritten: read again, but judged already ...
    assert _poll(trigger) is None
    assert not reports.exists()  # ... so neither compared nor reported again
    _rewrite(data.clean, current)  # new rows: compared; no drift, so no event and no report
    outcome = _poll(trigger)
    assert outcome is not None and not outcome.fired
    assert not reports.exists()


def test_a_new_episode_fires_again_but_never_for_a_reported_window(data: DriftData, tmp_path: Path) -> None:
    current = str(tmp_path / "current.parquet")
    trigger = _trigger(current, data, tmp_path)
    assert _poll(trigger) is None  # no data yet: nothing to check
    steps = [(data.drifted, True), (data.clean, False), (data.drifted, False)]
    steps.append((data.drifted_later, True))  # a drifted window never reported: a new episode
    for source, fires in steps:
        _rewrite(source, current)
        assert _fired(trigger) == fires, source


def test_without_a_state_uri_the_episode_lives_in_a_temporary_file(data: DriftData, tmp_path: Path) -> None:
    current = str(tmp_path / "current.parquet")
    trigger = _trigger(current, data, tmp_path, state_uri=None)
    fired = []
    for source in (data.drifted, data.drifted_later):  # one episode over two windows
        _rewrite(source, current)
        fired.append(_fired(trigger))
    assert fired == [True, False]
    assert trigger._scratch is not None
    scratch = Path(trigger._scratch.name)
    assert (scratch / "episode_state.json").exists()
    asyncio.run(trigger.cleanup())
    assert not scratch.exists()


def test_each_checked_window_is_reported_under_its_id(data: DriftData, tmp_path: Path) -> None:
    outcome = _poll(_trigger(data.drifted, data, tmp_path, report_prefix=str(tmp_path / "reports")))
    assert outcome is not None
    report = Path(str(outcome.report_uri))
    assert report.name == "drift_report.html" and report.parent.name == outcome.summary["window_id"]
    assert "Value Drift for column monthly_charges" in report.read_text()
    summary = json.loads((report.parent / "drift_summary.json").read_text())
    assert summary["drifted_columns"] == outcome.summary["drifted_columns"]


def test_cooldown_holds_back_the_next_episode(data: DriftData, tmp_path: Path) -> None:
    current = str(tmp_path / "current.parquet")
    trigger = _trigger(current, data, tmp_path, episode_policy=EpisodePolicy(cooldown_seconds=3600))
    fired = []
    for source in (data.drifted, data.clean, data.drifted_later):
        _rewrite(source, current)
        fired.append(_fired(trigger))
    assert fired == [True, False, False]


def test_an_unreachable_store_is_retried_at_the_next_poll(
    data: DriftData, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = StorageConfig(f"http://127.0.0.1:{free_port()}", "key-id", "secret-key")  # nothing listens there
    set_storage_connection(monkeypatch, "unreachable_s3", endpoint)
    spec = DriftCheckSpec(current_uri="s3://bucket/current/", reference_uri=data.reference)
    trigger = DriftTrigger(spec=spec, poll_interval=0.05, storage_conn_id="unreachable_s3")
    retried = "Drift check failed, retrying in 0.05 s: cannot reach S3 endpoint"
    logged: list[str] = []

    def failed_twice() -> bool:
        logged.append(capsys.readouterr().out)
        return "".join(logged).count(retried) >= 2

    assert _events(trigger, until=failed_twice, timeout=60) == []  # the loop survives ...
    assert failed_twice()  # ... and polls again


def test_a_failed_check_ends_the_trigger(data: DriftData, tmp_path: Path) -> None:
    trigger = _trigger(data.clean, data, tmp_path, columns=["nope"])
    with pytest.raises(RuntimeError, match=r"column\(s\) \['nope'\] missing"):
        _events(trigger)


def test_a_directory_of_part_files_is_read_as_one_window(data: DriftData, tmp_path: Path) -> None:
    parts = tmp_path / "customer_stats"
    parts.mkdir()
    shutil.copyfile(data.clean, parts / "part-a.parquet")
    window = DriftWindow("event_timestamp", lookback_seconds=43_200.0)
    trigger = _trigger(f"{parts}/", data, tmp_path, window=window)
    assert not _fired(trigger)
    shutil.copyfile(data.drifted_later, parts / "part-b.parquet")  # a newer day: the last half of it is checked
    outcome = _poll(trigger)
    assert outcome is not None and outcome.fired and 500 < outcome.summary["current_rows"] < 1000
