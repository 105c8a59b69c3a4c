"""LandedBatchesSensor: what it returns, when it waits, and a manual run that does not wait."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.sensors.features import LandedBatchesSensor
from tests.fixtures.s3_server import S3Server, set_storage_connection

Context = Callable[..., dict[str, Any]]


@pytest.fixture
def poke(task_context: Context) -> Callable[..., Any]:
    """``poke(sensor, run_type)``: one poke in a run of that type."""

    def run(sensor: LandedBatchesSensor, run_type: str = "scheduled") -> Any:
        context = {**task_context("wait_for_batches"), "dag_run": SimpleNamespace(run_type=run_type)}
        return sensor.poke(context)  # type: ignore[arg-type]

    return run


def test_waits_in_reschedule_mode_until_batches_land(tmp_path: Path, poke: Callable[..., Any]) -> None:
    landing = tmp_path / "landing"
    sensor = LandedBatchesSensor(task_id="wait_for_batches", prefix=f"{landing}/")
    assert sensor.mode == "reschedule"
    empty = poke(sensor)
    assert (empty.is_done, empty.xcom_value) == (False, [])

    landing.mkdir()
    for name in ("b.csv", "a.parquet", "README.txt"):
        (landing / name).write_text(name)
    landed = poke(sensor)
    assert (landed.is_done, landed.xcom_value) == (True, [str(landing / "a.parquet"), str(landing / "b.csv")])


def test_a_manual_run_does_not_wait(tmp_path: Path, poke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", str(tmp_path))
    sensor = LandedBatchesSensor(task_id="wait_for_batches")  # the landing zone under the data dir
    with pytest.raises(AirflowSkipException, match=rf"Triggered by hand, and no batch is in {tmp_path}/landing/"):
        poke(sensor, "manual")
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "x.parquet").write_text("x")
    assert poke(sensor, "manual").xcom_value == [str(tmp_path / "landing" / "x.parquet")]


def test_an_s3_landing_zone_through_a_connection(
    s3_server: S3Server, s3_bucket: str, poke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_storage_connection(monkeypatch, "landing_s3", s3_server.config)
    ObjectStore(s3_server.config).write_bytes(f"{s3_bucket}/landing/2024-05-01.parquet", b"PAR1")
    sensor = LandedBatchesSensor(
        task_id="wait_for_batches", prefix=f"{s3_bucket}/landing/", storage_conn_id="landing_s3"
    )
    assert poke(sensor).xcom_value == [f"{s3_bucket}/landing/2024-05-01.parquet"]
