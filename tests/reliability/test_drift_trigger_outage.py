"""DriftTrigger through an MLflow outage: a real ``mlflow server`` stopped while the watcher polls, then
started again on the same port and database. Nothing is stubbed: each poll asks the stopped server for the
champion (the MLflow client raises ``MlflowException``, caused by a refused connection), the loop keeps
polling, and once the server is back the check runs and the drift event fires."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
from airflow.triggers.base import TriggerEvent

import tests.fixtures.mlflow_server as mlflow_server_module
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec
from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.fixtures.drift_data import write_drift_data
from tests.fixtures.mlflow_server import MlflowServer, free_port
from tests.integration.test_drift_operator import register_champion

MODEL = "churn_outage"
RETRIED = "Drift check failed, retrying in"


def _launch(root: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> MlflowServer:
    """The fixture's server, on this port and database (so that a restart serves the same registry)."""
    with monkeypatch.context() as patched:
        patched.setattr(mlflow_server_module, "free_port", lambda: port)
        patched.setattr(mlflow_server_module.tempfile, "mkdtemp", lambda prefix: str(root))
        server = MlflowServer.launch()
    server.wait_healthy()
    return server


def _halt(server: MlflowServer) -> None:
    """Stop the server's processes, keeping its database."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    server.process.wait(timeout=30)


def test_the_watcher_polls_through_an_mlflow_outage_and_fires_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_drift_data(tmp_path / "data")
    root, port = tmp_path / "mlflow", free_port()
    root.mkdir()
    server = _launch(root, port, monkeypatch)
    try:
        register_champion(server.tracking_uri, MODEL, data.reference, data.reference_digest)
        monkeypatch.setenv(
            "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": server.tracking_uri})
        )
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # each poll fails at once while it is down
        _halt(server)
        spec = DriftCheckSpec(current_uri=data.drifted, model_name=MODEL, state_uri=str(tmp_path / "state.json"))
        trigger = DriftTrigger(spec=spec, poll_interval=0.2, storage_conn_id=None)
        logged: list[str] = []
        events: list[TriggerEvent] = []

        def retried() -> int:
            logged.append(capsys.readouterr().out)
            return "".join(logged).count(RETRIED)

        async def watch() -> None:
            async def consume() -> None:
                async for event in trigger.run():
                    events.append(event)

            task = asyncio.create_task(consume())
            for _ in range(600):  # up to 60 s for two failed polls
                if retried() >= 2 or task.done():
                    break
                await asyncio.sleep(0.1)
            assert not task.done(), "the outage ended the watcher"  # the bug: MlflowException was not retried
            assert retried() >= 2 and events == []
            nonlocal server
            server = await asyncio.to_thread(_launch, root, port, monkeypatch)  # back, same port and registry
            for _ in range(1800):  # up to 180 s for the check in a child process
                if events or task.done():
                    break
                await asyncio.sleep(0.1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(watch())
        assert "MlflowException" in "".join(logged) or "Connection refused" in "".join(logged)
        assert len(events) == 1
        assert events[0].payload["model_name"] == MODEL and events[0].payload["dataset_drift"]
    finally:
        server.stop()
