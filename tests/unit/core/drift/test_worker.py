"""The drift check in a child process: the same outcome as in-process, errors carried back, S3 settings
passed as environment, and no child left behind when the wait is cancelled."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops_provider.core.drift.pipeline import run_drift_check
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, NothingToCheckError
from airflow_mlops_provider.core.drift.worker import MODULE, check_in_subprocess, is_unreachable
from airflow_mlops_provider.core.io.storage import ObjectStore
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data
from tests.fixtures.s3_server import S3Server


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"), rows=1000)


def _spec(current_uri: str, reference_uri: str, **kwargs: Any) -> DriftCheckSpec:
    return DriftCheckSpec(current_uri=current_uri, reference_uri=reference_uri, exclude_columns=NOT_FEATURES, **kwargs)


def _in_child(spec: DriftCheckSpec, env: dict[str, str] | None = None) -> tuple[Any, list[str]]:
    lines: list[str] = []
    outcome = asyncio.run(check_in_subprocess(spec, {**os.environ, **(env or {})}, lines.append))
    return outcome, lines


def _no_mlflow() -> None:
    raise AssertionError("an explicit reference needs no MLflow")


def test_the_child_returns_the_outcome_of_the_same_check_in_process(data: DriftData, tmp_path: Path) -> None:
    spec = _spec(data.drifted, data.reference, state_uri=str(tmp_path / "child.json"))
    child, lines = _in_child(spec)
    in_process = run_drift_check(
        _spec(data.drifted, data.reference, state_uri=str(tmp_path / "here.json")), ObjectStore(), _no_mlflow
    )
    assert child == in_process
    assert child.fired and child.summary["dataset_drift"]
    assert any(f"Window {child.summary['window_id']}" in line for line in lines)  # the child's log
    assert (tmp_path / "child.json").exists()  # the child saved its episode state


def test_nothing_to_check_and_failures_come_back_as_errors(data: DriftData, tmp_path: Path) -> None:
    with pytest.raises(NothingToCheckError, match=r"none\.parquet"):
        _in_child(_spec(str(tmp_path / "none.parquet"), data.reference))
    with pytest.raises(RuntimeError, match=r"ValueError: column\(s\) \['nope'\] missing"):
        _in_child(_spec(data.clean, data.reference, columns=["nope"]))


def test_the_child_reads_s3_with_the_settings_of_its_environment(
    data: DriftData, s3_server: S3Server, s3_bucket: str
) -> None:
    store = ObjectStore(s3_server.config)
    for name, path in (("reference.parquet", data.reference), ("current/part-0.parquet", data.drifted)):
        store.write_bytes(f"{s3_bucket}/{name}", Path(path).read_bytes())
    spec = _spec(f"{s3_bucket}/current/", f"{s3_bucket}/reference.parquet", report_prefix=f"{s3_bucket}/reports")
    outcome, _ = _in_child(spec, s3_server.config.to_env())
    assert outcome.fired and outcome.summary["current_rows"] == 500
    assert store.exists(str(outcome.report_uri))


def test_a_cancelled_wait_kills_the_child(data: DriftData, tmp_path: Path) -> None:
    state = tmp_path / "state.json"  # the child's last write: it exists only if the check ran to its end

    async def cancelled() -> None:
        check = check_in_subprocess(
            _spec(data.drifted, data.reference, state_uri=str(state)), dict(os.environ), lambda line: None
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(check, 0.3)  # the child is still importing

    asyncio.run(cancelled())
    assert _children_running(MODULE) == []
    assert not state.exists()


def _children_running(module: str) -> list[int]:
    """Processes whose parent is this one and whose command line runs ``module``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and module.encode() in command:
            found.append(int(proc.name))
    return found


def test_an_mlflow_server_that_is_down_is_unreachable_and_a_bad_spec_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    from tests.fixtures.s3_server import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(MlflowException) as down:  # a real client, nothing listening
        MlflowClient(f"http://127.0.0.1:{free_port()}").get_model_version_by_alias("m", "champion")
    assert is_unreachable(down.value)
    assert not is_unreachable(MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_unreachable(MlflowException("some other failure"))
    assert not is_unreachable(ValueError("column(s) ['nope'] missing"))
