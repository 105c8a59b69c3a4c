"""The MLflow server goes away during a promotion or a registration, and comes back on the same port with
the same backend store: the try that saw it fail says which server, its retry finishes, and nothing is
half-registered or half-promoted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, Tag
from airflow_mlops_provider.core.models.lease import PromotionLease
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.task_server import TaskServer
from tests.reliability.registry_models import (
    TARGET,
    aliases,
    craft_models,
    lease_tickets,
    records,
    start_task,
    task_env,
    task_script,
)

#: Task processes and two server boots on a shared machine: longer than the 600 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3000)]
Context = Callable[..., dict[str, Any]]


class RestartableServer:
    """A private ``mlflow server`` that can be stopped and started again on its port and store."""

    def __init__(self) -> None:
        self.server = MlflowServer.launch()
        self.server.wait_healthy()

    @property
    def uri(self) -> str:
        return self.server.tracking_uri

    def down(self) -> None:
        """Stop the server's process group, keeping its directory (store and artifacts)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server.process.pid, signal.SIGTERM)
        try:
            self.server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.process.pid, signal.SIGKILL)
            self.server.process.wait()

    def up(self) -> None:
        """Start the same command again (same port, same sqlite store) and wait until it is healthy."""
        env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        with (self.server.root / "server.log").open("ab") as log_file:
            process = subprocess.Popen(
                self.server.process.args,
                cwd=self.server.root,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.server = MlflowServer(self.server.tracking_uri, self.server.root, process)
        self.server.wait_healthy()


@pytest.fixture
def restartable(monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableServer]:
    """A private server with the ``mlflow_default`` connection on it; stopped and deleted after the test."""
    server = RestartableServer()
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", f'{{"conn_type": "mlflow", "host": "{server.uri}"}}')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    try:
        yield server
    finally:
        server.server.stop()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_promotion_that_loses_the_server_fails_naming_it_and_its_retry_promotes(
    restartable: RestartableServer, tmp_path: Path, task_context: Context, task_server: TaskServer
) -> None:
    holdout, models = craft_models(restartable.uri, tmp_path, [0.7, 0.9], seed=8)
    for i, crafted in enumerate(models):
        RegisterModelOperator(task_id="register", model_name="faults", mlflow_run_id=crafted.mlflow_run_id).execute(
            task_context("register", f"run_{i}")
        )
    PromoteModelOperator(
        task_id="promote", model_name="faults", version="1", holdout_uri=holdout, target=TARGET
    ).execute(task_context("promote", "run_0"))
    client = MlflowClient(restartable.uri)
    settings = {"model_name": "faults", "version": "2", "holdout_uri": holdout, "target": TARGET}
    env = task_env(restartable.uri)
    # Hold the lease, so the promotion has scored the challenger and waits in line when the server goes away.
    blocker = PromotionLease(client, "faults", "ct/blocker/promote")
    blocker.acquire()
    first = start_task(task_server, task_script("PromoteModelOperator", settings, "run_1", 1, "promote"), env)
    _wait_for(lambda: len(lease_tickets(client, "faults")) == 2, "the promotion to queue for the lease")
    restartable.down()
    output = first.communicate(timeout=900)[0]
    assert first.returncode != 0
    assert restartable.uri in output.strip().splitlines()[-1], output[-3000:]
    restartable.up()
    assert aliases(client, "faults") == {CHAMPION: "1"}  # nothing moved
    assert Tag.PROMOTION not in client.get_model_version("faults", "2").tags
    blocker.release()

    retry = start_task(task_server, task_script("PromoteModelOperator", settings, "run_1", 2, "promote"), env)
    output = retry.communicate(timeout=900)[0]
    assert retry.returncode == 0, output[-3000:]
    assert aliases(client, "faults") == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    assert records(client, "faults")["2"]["champion_version"] == "1"
    assert lease_tickets(client, "faults") == []  # the retry removed the ticket of the try that failed


def test_a_registration_without_the_server_fails_naming_it_and_its_retry_registers_once(
    restartable: RestartableServer, tmp_path: Path, task_server: TaskServer
) -> None:
    _, models = craft_models(restartable.uri, tmp_path, [0.8], seed=2)
    settings = {"model_name": "faults_register", "mlflow_run_id": models[0].mlflow_run_id}
    env = task_env(restartable.uri)
    restartable.down()
    first = start_task(task_server, task_script("RegisterModelOperator", settings, "run_0", 1, "register"), env)
    output = first.communicate(timeout=900)[0]
    assert first.returncode != 0
    assert restartable.uri in output.strip().splitlines()[-1], output[-3000:]
    restartable.up()
    client = MlflowClient(restartable.uri)
    assert client.search_registered_models("name = 'faults_register'") == []
    for try_number, created in ((2, True), (3, False)):
        task = start_task(
            task_server, task_script("RegisterModelOperator", settings, "run_0", try_number, "register"), env
        )
        output = task.communicate(timeout=900)[0]
        assert task.returncode == 0, output[-3000:]
        assert f'"created": {str(created).lower()}' in output.strip().splitlines()[-1]
    assert [v.version for v in client.search_model_versions("name = 'faults_register'")] == ["1"]
