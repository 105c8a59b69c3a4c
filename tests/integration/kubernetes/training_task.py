"""The training task the stand-in-cluster tests run, and the slice of Airflow's task runtime they need.

Each try builds its operator afresh, as a worker parses the DAG file again.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.execution_time import task_runner
from airflow.sdk.serde import deserialize, serialize

from airflow_mlops_provider.operators.training import GPUTrainingOperator
from demo import data as demo_data

NAMESPACE = "ml-training"
EXPERIMENT = "churn_k8s"
DAG_ID = "ct_k8s"
TASK_ID = "train_model"
SECRET = "mlops-trainer"


def training_operator(dataset_uri: str, *, deferrable: bool = False, **kwargs: Any) -> GPUTrainingOperator:
    """The kubernetes-backend training task, in a DAG, polling the stand-in often.

    :param dataset_uri: the training set.
    :param deferrable: wait for the pod in the triggerer.
    :param kwargs: more operator arguments (e.g. ``hyperparameters``) or overrides.
    """
    settings: dict[str, Any] = {
        "task_id": TASK_ID,
        "dataset_uri": dataset_uri,
        "target": demo_data.TARGET,
        "numeric_features": demo_data.FEATURES_NUMERIC,
        "categorical_features": demo_data.FEATURES_CATEGORICAL,
        "experiment_name": EXPERIMENT,
        "hyperparameters": {"seed": 7, "batch_size": 128, "epochs": 1},
        "backend": "kubernetes",
        "namespace": NAMESPACE,
        "image": "registry.example/trainer:test",
        "secret_name": SECRET,
        "gpus": 1,
        "gpu_type": "NVIDIA-A100-SXM4-80GB",
        "cpu": "1",
        "memory": "2Gi",
        "shm_size": "1Gi",
        "deferrable": deferrable,
        "startup_check_interval_seconds": 1,
        "poll_interval": 0.5,
        "termination_grace_period": 5,
        "log_events_on_failure": True,
        **kwargs,
    }
    with DAG(DAG_ID, schedule=None):
        return GPUTrainingOperator(**settings)


@dataclass
class TaskInstance:
    """What KubernetesPodOperator, the provider and the task runner's XCom push read from ``context["ti"]``."""

    task: GPUTrainingOperator
    run_id: str
    try_number: int = 1
    map_index: int = -1
    is_mapped: bool = False
    start_date: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def dag_id(self) -> str:
        return self.task.dag_id

    @property
    def task_id(self) -> str:
        return self.task.task_id

    def xcom_push(self, key: str, value: Any) -> None:
        """Push an XCom through the task runner's own code, to the supervisor."""
        task_runner._xcom_push(self, key, value)  # type: ignore[arg-type]


class Supervisor:
    """The task process's channel to its supervisor (``SUPERVISOR_COMMS``), keeping the XComs sent on it:
    the narrowest boundary below the task runner's XCom code."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def send(self, msg: Any) -> None:
        """Keep a ``SetXCom`` message's (serialized) value."""
        self.xcom[msg.key] = msg.value


def context_for(task: GPUTrainingOperator, run_id: str, try_number: int = 1) -> dict[str, Any]:
    """A task context for one try of ``task`` in the DAG run ``run_id``."""
    ti = TaskInstance(task, run_id, try_number)
    return {"ti": ti, "task": task, "dag": task.dag, "run_id": run_id, "task_state_store": None}


def finish(context: dict[str, Any], result: Any) -> None:
    """Push a task's return value as the task runner does after ``execute`` or a resumed method."""
    task_runner._push_xcom_if_needed(result, context["ti"], structlog.get_logger())


def defer(task: GPUTrainingOperator, context: dict[str, Any]) -> TaskDeferred:
    """Run ``execute`` up to its deferral; fail if it does not defer."""
    try:
        task.execute(context)
    except TaskDeferred as deferred:
        return deferred
    raise AssertionError("the task did not defer")


def trigger_event(deferred: TaskDeferred) -> dict[str, Any]:
    """Run the deferral's trigger as the triggerer does (rebuilt from its serialized form) until its first
    event; return the next method's kwargs as the worker receives them."""
    classpath, kwargs = deferred.trigger.serialize()
    module, _, name = classpath.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**deserialize(serialize(kwargs)))

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    payload = asyncio.run(first_event())
    next_kwargs: dict[str, Any] = deserialize(serialize({**(deferred.kwargs or {}), "event": payload}))
    return next_kwargs


def resume(task: GPUTrainingOperator, context: dict[str, Any], deferred: TaskDeferred) -> Any:
    """Resume a deferred task on a fresh operator, as a worker does after the trigger fired."""
    context["ti"].task = context["task"] = task
    return task.resume_execution(deferred.method_name, trigger_event(deferred), context)
