"""FeatureFreshnessTrigger and FeatureFreshnessSensor: serialization, the async wait, deferral and resumption."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from airflow.triggers.base import TriggerEvent

from airflow_mlops_provider.core.features.offline_source import max_event_timestamp, write_part
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.sensors.features import FeatureFreshnessSensor
from airflow_mlops_provider.triggers.features import FeatureFreshnessTrigger
from demo import data as demo_data
from tests.fixtures.s3_server import S3Server

pytestmark = pytest.mark.integration
TARGET = "2024-06-02T00:00:00+00:00"


def part(*stamps: str) -> pa.Table:
    return pa.table({"event_timestamp": pa.array([pd.Timestamp(s) for s in stamps], pa.timestamp("ns", tz="UTC"))})


def trigger_for(source: str) -> FeatureFreshnessTrigger:
    return FeatureFreshnessTrigger(source, "event_timestamp", TARGET, poll_interval=0.05)


def test_serialize_round_trips() -> None:
    trigger = FeatureFreshnessTrigger("s3://b/stats/", "ts", TARGET, poll_interval=7.5, storage_conn_id="minio")
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert isinstance(rebuilt, FeatureFreshnessTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "source_uri": "s3://b/stats/",
        "timestamp_field": "ts",
        "target": TARGET,
        "poll_interval": 7.5,
        "storage_conn_id": "minio",
    }


def test_fires_once_data_reaches_the_target(tmp_path: Path) -> None:
    source = f"{tmp_path}/stats/"

    async def scenario() -> tuple[TriggerEvent, bool]:
        write_part(part("2024-06-01T12:00Z"), f"{source}part-old.parquet")  # not fresh enough
        waiting = asyncio.create_task(anext(trigger_for(source).run()))
        await asyncio.sleep(0.3)
        early = waiting.done()
        write_part(part("2024-06-01T23:00Z", "2024-06-02T00:00Z"), f"{source}part-new.parquet")
        return await asyncio.wait_for(waiting, 10), early

    event, early = asyncio.run(scenario())
    assert not early, "the trigger fired before the data arrived"
    assert event.payload == {"status": "success", "latest": "2024-06-02T00:00:00+00:00", "target": TARGET}


def test_an_unreadable_source_ends_with_an_error_event(tmp_path: Path) -> None:
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "part-x.parquet").write_bytes(b"garbage")
    event = asyncio.run(asyncio.wait_for(anext(trigger_for(f"{tmp_path}/stats/").run()), 10))
    assert event.payload["status"] == "error" and "part-x.parquet" in event.payload["message"]


def test_sensor_defers_until_fresh_then_resumes(
    feast_repo: Path, tmp_path: Path, task_context: Callable[..., dict[str, Any]]
) -> None:
    sensor = FeatureFreshnessSensor(
        task_id="wait", feature_view="customer_stats", up_to="2024-06-02 00:00:00", poke_interval=5, timeout=600
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context("wait"))
    trigger = deferred.value.trigger
    assert isinstance(trigger, FeatureFreshnessTrigger)
    assert (deferred.value.method_name, deferred.value.timeout) == ("execute_complete", pd.Timedelta(seconds=600))
    assert trigger.serialize()[1] == {
        "source_uri": f"{feast_repo}/data/offline/customer_stats/",
        "timestamp_field": "event_timestamp",
        "target": TARGET,
        "poll_interval": 5,
        "storage_conn_id": "mlops_s3_default",
    }

    event = {"status": "success", "latest": "2024-06-02T01:00:00+00:00", "target": TARGET}
    resumed = sensor.execute_complete(task_context("wait"), event)
    assert resumed == {"feature_view": "customer_stats", "latest": event["latest"], "target": TARGET}
    with pytest.raises(AirflowException, match="Waiting for customer_stats failed: disk on fire"):
        sensor.execute_complete(task_context("wait"), {"status": "error", "message": "disk on fire"})

    batch = demo_data.generate_batch(20, "2024-06-02", seed=1).drop(columns=[demo_data.TARGET])
    (feast_repo / "data" / "offline" / "customer_stats").mkdir(parents=True)
    batch.to_parquet(feast_repo / "data" / "offline" / "customer_stats" / "part-late.parquet")
    fresh = sensor.execute(task_context("wait"))  # fresh already: no deferral
    assert fresh["latest"] == batch["event_timestamp"].max().isoformat()
    assert FeatureFreshnessSensor(task_id="poke", feature_view="customer_stats", up_to=TARGET).poke({})  # type: ignore[arg-type]


def test_newest_timestamp_on_s3_reads_only_footers(s3_server: S3Server, s3_bucket: str) -> None:
    store = ObjectStore(s3_server.config)
    source = f"{s3_bucket}/offline/stats/"
    assert max_event_timestamp(source, "event_timestamp", store) is None
    write_part(part("2024-06-01T00:00Z", "2024-06-03T04:05:06.789Z"), f"{source}part-a.parquet", store)
    write_part(part("2024-06-02T00:00Z"), f"{source}part-b.parquet", store)
    assert max_event_timestamp(source, "event_timestamp", store) == pd.Timestamp("2024-06-03T04:05:06.789Z")
