"""GPUTrainingOperator's kubernetes backend through KubernetesPodOperator's own code, sync and deferrable.

The only stand-in is the Kubernetes API server (:mod:`tests.integration.kubernetes.cluster`, HTTP on
loopback) with its scheduler and kubelet; KubernetesPodOperator's clients, pod manager and trigger, the
MLflow server, S3 (moto) and the trainer (a real process with exactly the pod's env) are real. Nothing of
KubernetesPodOperator is patched.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time import task_runner
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import Tag, TrainingResult
from tests.integration.kubernetes.cluster import FakeCluster
from tests.integration.kubernetes.training_task import (
    EXPERIMENT,
    NAMESPACE,
    Supervisor,
    context_for,
    defer,
    finish,
    resume,
    training_operator,
)

pytestmark = pytest.mark.integration
MODES = ["sync", "deferrable"]
LONG = {"seed": 7, "batch_size": 16, "epochs": 400}  # trains for minutes unless stopped


def _run(dataset_uri: str, mode: str, run_id: str, try_number: int = 1, **kwargs: Any) -> dict[str, Any]:
    """One try of the training task, start to end, as a worker (and for ``deferrable``, a triggerer) runs
    it; return the XComs it pushed."""
    supervisor: Supervisor = task_runner.SUPERVISOR_COMMS  # type: ignore[assignment]
    supervisor.xcom.clear()
    task = training_operator(dataset_uri, deferrable=mode == "deferrable", **kwargs)
    context = context_for(task, run_id, try_number)
    if mode == "sync":
        finish(context, task.execute(context))
    else:
        deferred = defer(task, context)
        finish(context, resume(training_operator(dataset_uri, deferrable=True, **kwargs), context, deferred))
    return dict(supervisor.xcom)


def _runs(client: MlflowClient, run_id: str) -> list[Any]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], f"tags.`{Tag.AIRFLOW_RUN_ID}` = '{run_id}'"))


def _error(mode: str, dataset_uri: str, run_id: str, **kwargs: Any) -> str:
    with pytest.raises(AirflowException) as failed:
        _run(dataset_uri, mode, run_id, **kwargs)
    return str(failed.value)


@pytest.mark.parametrize("mode", MODES)
def test_pod_trains_and_the_result_is_pushed_per_key(cluster: FakeCluster, datasets: dict[str, str], mode: str) -> None:
    xcom = _run(datasets["clean"], mode, f"ok_{mode}")
    result = xcom["return_value"]
    assert set(result) == set(TrainingResult.__annotations__)
    for key in TrainingResult.__annotations__:
        assert xcom[key] == result[key]
    run = MlflowClient().get_run(result["mlflow_run_id"])
    assert run.info.status == "FINISHED" and result["model_uri"] == run.data.tags[Tag.MODEL_URI]
    assert run.data.tags[Tag.TRAINER_BACKEND] == "kubernetes"
    assert result["dataset_uri"] == datasets["clean"] and result["metrics"]["holdout_roc_auc"] > 0.5
    ((pod_name, env),) = cluster.started  # one container, with the pod's env and nothing else
    assert env["MLFLOW_RUN_ID"] == result["mlflow_run_id"]
    assert env["AWS_ACCESS_KEY_ID"] == "testing"  # from the Secret, through secretKeyRef
    assert "AIRFLOW_CONN_MLOPS_S3_DEFAULT" not in env and "PATH" not in env
    assert xcom["pod_name"] == pod_name
    assert cluster.deleted == [pod_name] and cluster.pods(NAMESPACE) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_trainer_fails_the_task_with_its_error_and_the_run(
    cluster: FakeCluster, datasets: dict[str, str], mode: str
) -> None:
    message = _error(mode, datasets["bad"], f"bad_{mode}")
    assert "returned a failure" in message
    assert "trainer error: dataset is missing columns ['plan']" in message  # the pod log's tail
    client = MlflowClient()
    (run,) = _runs(client, f"bad_{mode}")
    assert run.info.status == "FAILED" and Tag.MODEL_URI not in run.data.tags
    assert client.search_model_versions(f"run_id = '{run.info.run_id}'") == []
    assert cluster.pods(NAMESPACE) == []


@pytest.mark.parametrize("mode", MODES)
def test_an_unschedulable_pod_fails_naming_the_missing_gpu_and_is_deleted(
    cluster: FakeCluster, datasets: dict[str, str], mode: str
) -> None:
    cluster.node.gpus = 0
    message = _error(mode, datasets["clean"], f"nogpu_{mode}", schedule_timeout_seconds=3)
    assert "was never scheduled (waited 3s)" in message
    assert "0/1 nodes are available: 1 Insufficient nvidia.com/gpu." in message
    assert "It asks for memory: 2Gi, nvidia.com/gpu: 1 on nodes labelled" in message
    assert cluster.started == [] and len(cluster.deleted) == 1 and cluster.pods(NAMESPACE) == []
    (run,) = _runs(MlflowClient(), f"nogpu_{mode}")
    assert run.info.status == "FAILED"


def test_a_killed_task_deletes_its_pod(cluster: FakeCluster, datasets: dict[str, str]) -> None:
    """``on_kill`` is what the task runner calls on SIGTERM (a task marked failed, a timeout)."""
    task = training_operator(datasets["clean"], hyperparameters=LONG)
    context = context_for(task, "killed_sync")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            task.execute(context)
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=work)
    worker.start()
    cluster.wait_for("the trainer to start", lambda: len(cluster.started) == 1)
    task.on_kill()
    worker.join(60)
    assert not worker.is_alive() and errors
    assert cluster.deleted == [cluster.started[0][0]] and cluster.pods(NAMESPACE) == []
    (run,) = _runs(MlflowClient(), "killed_sync")
    assert run.info.status == "FAILED"


def test_a_killed_deferred_task_deletes_its_pod(cluster: FakeCluster, datasets: dict[str, str]) -> None:
    """A deferred task killed by a user: the triggerer cancels the trigger and calls its ``on_kill``."""
    import asyncio

    from tests.integration.kubernetes.training_task import trigger_event

    task = training_operator(datasets["clean"], deferrable=True, hyperparameters=LONG)
    deferred = defer(task, context_for(task, "killed_deferred"))

    async def kill_while_training() -> None:
        waiting = asyncio.ensure_future(asyncio.to_thread(trigger_event, deferred))
        await asyncio.to_thread(cluster.wait_for, "the trainer to start", lambda: len(cluster.started) == 1)
        assert not waiting.done()
        await deferred.trigger.on_kill()
        await waiting  # the deleted pod ends the trigger, with an event nobody resumes

    asyncio.run(kill_while_training())
    assert cluster.deleted == [cluster.started[0][0]] and cluster.pods(NAMESPACE) == []


def _dead_worker(cluster: FakeCluster, dataset_uri: str, run_id: str, hyperparameters: dict[str, Any]) -> str:
    """A first try that gets as far as a worker that dies mid-training, and leaves what it leaves: a running
    pod that nobody follows, checks or deletes, and its MLflow run RUNNING. (It defers, and its trigger never
    runs.) Return that run."""
    task = training_operator(dataset_uri, deferrable=True, hyperparameters=hyperparameters)
    defer(task, context_for(task, run_id))
    cluster.wait_for("the trainer to start", lambda: len(cluster.started) == 1)
    assert [pod["status"]["phase"] for pod in cluster.pods(NAMESPACE)] == ["Running"]
    first_run = cluster.started[0][1]["MLFLOW_RUN_ID"]
    assert MlflowClient().get_run(first_run).info.status == "RUNNING"
    return first_run


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_reattaches_to_the_pod_of_a_dead_worker_and_trains_once(
    cluster: FakeCluster, datasets: dict[str, str], mode: str
) -> None:
    run_id, hyperparameters = f"reattach_{mode}", {"seed": 7, "batch_size": 64, "epochs": 30}
    first_run = _dead_worker(cluster, datasets["clean"], run_id, hyperparameters)
    pod_name = cluster.started[0][0]

    xcom = _run(datasets["clean"], mode, run_id, try_number=2, hyperparameters=hyperparameters)
    assert xcom["mlflow_run_id"] == first_run and xcom["pod_name"] == pod_name
    assert len(cluster.started) == 1  # never trained twice
    client = MlflowClient()
    (run,) = _runs(client, run_id)
    assert run.info.status == "FINISHED" and run.data.tags[Tag.AIRFLOW_TRY_NUMBER] == "1"
    assert cluster.pods(NAMESPACE) == []

    # A third try (had the worker died again after reading the result) reuses the run: no pod, no deferral.
    task = training_operator(datasets["clean"], deferrable=mode == "deferrable", hyperparameters=hyperparameters)
    assert task.execute(context_for(task, run_id, 3))["mlflow_run_id"] == first_run
    assert len(cluster.started) == 1 and len(_runs(client, run_id)) == 1


@pytest.mark.parametrize("end", ["evicted", "crashed"])
def test_a_retry_never_reuses_an_evicted_or_failed_pod(
    cluster: FakeCluster, datasets: dict[str, str], end: str
) -> None:
    run_id = f"retry_{end}"
    first_run = _dead_worker(cluster, datasets["clean"], run_id, LONG)
    orphan = cluster.started[0][0]
    if end == "evicted":
        cluster.evict(NAMESPACE, orphan)
    else:
        cluster.crash(NAMESPACE, orphan)
    cluster.wait_for("the pod to fail", lambda: cluster.pods(NAMESPACE)[0]["status"]["phase"] == "Failed")

    xcom = _run(datasets["clean"], "sync", run_id, try_number=2)
    assert len(cluster.started) == 2 and cluster.started[1][0] != orphan
    assert xcom["mlflow_run_id"] == cluster.started[1][1]["MLFLOW_RUN_ID"] != first_run
    statuses = {run.data.tags[Tag.AIRFLOW_TRY_NUMBER]: run.info.status for run in _runs(MlflowClient(), run_id)}
    assert statuses == {"1": "FAILED", "2": "FINISHED"}
    assert cluster.deleted == [orphan, cluster.started[1][0]] and cluster.pods(NAMESPACE) == []


def test_a_retry_after_the_pod_trained_reuses_its_run_and_deletes_the_pod(
    cluster: FakeCluster, datasets: dict[str, str]
) -> None:
    """The worker died while the pod trained; the pod finished before the retry: its run is the result."""
    first_run = _dead_worker(cluster, datasets["clean"], "trained", {"seed": 7, "batch_size": 128, "epochs": 1})
    cluster.wait_for("the pod to succeed", lambda: cluster.pods(NAMESPACE)[0]["status"]["phase"] == "Succeeded")

    xcom = _run(datasets["clean"], "sync", "trained", try_number=2)
    assert xcom["mlflow_run_id"] == first_run and "pod_name" not in xcom
    assert len(cluster.started) == 1 and cluster.pods(NAMESPACE) == []
    assert cluster.deleted == [cluster.started[0][0]]
