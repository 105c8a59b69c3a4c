"""Stopping a local training task leaves nothing behind, and the trainer never goes through a shell.

SIGTERM (Airflow's on_kill): the trainer's process group ends, the trainer ends its run FAILED itself
(exit code 143). SIGKILL of the task process (a dead worker): the trainer gets SIGTERM from Linux
(PR_SET_PDEATHSIG) and does the same, no orphan keeps training. The pod backend's counterpart (the pod
deleted through the Kubernetes API) is tests/integration/kubernetes/test_training_pods.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import Tag
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from airflow_mlops_provider.training.errors import EXIT_TERMINATED
from airflow_mlops_provider.training.local_process import LocalTrainer
from demo.data import FEATURES_CATEGORICAL, FEATURES_NUMERIC, TARGET, assign_splits, generate_batch
from tests.fixtures.mlflow_server import MlflowServer
from tests.paths import REPO

pytestmark = pytest.mark.integration

EXPERIMENT = "reliability_trainer_termination"
LONG = {"epochs": 10_000, "device": "cpu", "cpu_threads": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = str(tmp_path_factory.mktemp("termination") / "train.parquet")
    write_dataset(assign_splits(generate_batch(600, "2026-01-01", days=5, seed=8)), uri)
    return uri


def _operator(dataset_uri: str, **hyperparameters: Any) -> GPUTrainingOperator:
    return GPUTrainingOperator(
        task_id="train",
        dataset_uri=dataset_uri,
        target=TARGET,
        numeric_features=FEATURES_NUMERIC,
        categorical_features=FEATURES_CATEGORICAL,
        experiment_name=EXPERIMENT,
        hyperparameters=hyperparameters or LONG,
        storage_conn_id=None,
        backend="local",
        namespace="unused",
    )


def _run_of(tracking_uri: str, airflow_run_id: str, timeout: float = 300) -> str:
    """The MLflow run of this Airflow run's training once its trainer logged an epoch."""
    client = MlflowClient(tracking_uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        runs = (
            []
            if experiment is None
            else client.search_runs([experiment.experiment_id], f"tags.`{Tag.AIRFLOW_RUN_ID}` = '{airflow_run_id}'")
        )
        if runs and "val_loss" in runs[0].data.metrics:
            return str(runs[0].info.run_id)
        time.sleep(0.5)
    raise AssertionError(f"no epoch logged for {airflow_run_id} within {timeout}s")


def _gone(pid: int) -> bool:
    """The process exited (a zombie waiting for its reaper counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith(("Z", "X"))
    except FileNotFoundError:
        return True


def _wait_gone(pids: list[int], timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids):
        time.sleep(0.2)
    return [pid for pid in pids if not _gone(pid)]


def _group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def test_sigterm_ends_the_trainer_group_and_fails_the_run(
    dataset: str, mlflow_connection: str, task_context: Callable[..., dict[str, Any]]
) -> None:
    op = _operator(dataset)
    errors: list[BaseException] = []

    def execute() -> None:
        try:
            op.execute(task_context("train", "sigterm"))
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=execute)
    worker.start()
    run_id = _run_of(mlflow_connection, "sigterm")
    assert op._process is not None
    pgid = op._process.pid  # the trainer leads its own group
    assert _group(pgid)
    op.on_kill()  # what Airflow calls on SIGTERM to the task
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert op._process.returncode == EXIT_TERMINATED  # the trainer handled SIGTERM, it was not SIGKILLed
    assert _wait_gone(_group(pgid)) == []  # no orphan in its group
    assert errors and f"exit code {EXIT_TERMINATED}" in str(errors[0])
    run = MlflowClient(mlflow_connection).get_run(run_id)
    assert run.info.status == "FAILED" and Tag.MODEL_URI not in run.data.tags


#: A task process that trains for long and prints its trainer's pid.
TASK = """
import json, os, sys, threading, time
sys.path.insert(0, os.getcwd())
from tests.reliability.test_trainer_termination import _operator
from tests.fixtures.task_context import RuntimeTaskInstance

op = _operator(os.environ["TEST_DATASET"])
def report():
    while op._process is None:
        time.sleep(0.05)
    print("TRAINER_PID", op._process.pid, flush=True)
threading.Thread(target=report, daemon=True).start()
op.execute({"ti": RuntimeTaskInstance("termination", "sigkill", "train", 1)})
"""


def _trainer_pid(output: Path, task: subprocess.Popen[bytes], timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and task.poll() is None:
        for line in output.read_text(errors="replace").splitlines():
            if line.startswith("TRAINER_PID "):
                return int(line.split()[1])
        time.sleep(0.2)
    raise AssertionError(f"the task never started its trainer:\n{output.read_text(errors='replace')[-3000:]}")


def _server_errors(server: MlflowServer) -> str:
    """The last error lines of the MLflow server's log."""
    lines = (server.root / "server.log").read_text(errors="replace").splitlines()
    return "\n".join([line for line in lines if "ERROR" in line or "Error" in line][-20:])


def test_a_killed_task_process_leaves_no_trainer_behind(
    dataset: str, mlflow_connection: str, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    env = os.environ | {
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": mlflow_connection}),
        "MLFLOW_TRACKING_URI": mlflow_connection,
        "TEST_DATASET": dataset,
    }
    output = tmp_path / "task.log"
    with output.open("wb") as sink:
        task = subprocess.Popen([sys.executable, "-c", TASK], cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        trainer = _trainer_pid(output, task)
        run_id = _run_of(mlflow_connection, "sigkill")
        task.send_signal(signal.SIGKILL)  # the worker dies without running on_kill
        task.wait(timeout=30)
        assert _wait_gone([trainer]) == []  # Linux sent it SIGTERM: it stopped instead of training on
        client = MlflowClient(mlflow_connection)
        deadline = time.monotonic() + 30
        while client.get_run(run_id).info.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        # ended by the trainer itself; if not, the server's errors may say why
        assert client.get_run(run_id).info.status == "FAILED", _server_errors(mlflow_server)
    finally:
        if task.poll() is None:
            task.kill()
            task.wait()


def test_the_trainer_gets_an_argument_list_never_a_shell(
    tmp_path: Path, mlflow_connection: str, task_context: Callable[..., dict[str, Any]]
) -> None:
    marker = tmp_path / "injected"
    uri = str(tmp_path / f"x.csv; touch {marker} $(touch {marker}2) `touch {marker}3`.csv")
    op = _operator(uri, epochs=1, device="cpu")
    with pytest.raises(AirflowFailException, match=r"The trainer rejected its input \(exit code 2\)"):
        op.execute(task_context("train", "no_shell"))
    assert list(tmp_path.iterdir()) == []  # nothing ran the text as commands
    assert isinstance(op._process, LocalTrainer) and isinstance(op._process.args, list)
    assert op._process.args[-len(op.trainer_arguments()) :] == op.trainer_arguments()
    assert uri in op._process.args  # passed as one literal argument
