"""Registry fixtures of the reliability tests: models whose holdout score is known, and promotions run as
separate task processes (each its own process, forked from a warm interpreter as on a preloading worker).

A crafted model predicts one column of the holdout file, so its ROC AUC on the holdout is exactly the AUC
of that column, computed here with the provider's own metric.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from scipy.stats import norm

from airflow_mlops_provider.contracts import PROMOTION_LEASE_SUFFIX, Tag
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.core.models.lineage import filter_value
from airflow_mlops_provider.core.models.metrics import roc_auc
from tests.fixtures.task_server import ForkedTask, TaskServer

TARGET = "y"


class ColumnScore(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Predicts the column named in its model config."""

    def load_context(self, context: Any) -> None:
        self.column = context.model_config["column"]

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return model_input[self.column].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class CraftedModel:
    """A logged model with a known holdout AUC.

    :param mlflow_run_id: the run it was logged in (with :attr:`Tag.MODEL_URI` set, as the trainer does).
    :param model_uri: the logged model.
    :param auc: its ROC AUC on the holdout file.
    """

    mlflow_run_id: str
    model_uri: str
    auc: float


def craft_models(
    tracking_uri: str, root: Path, target_aucs: list[float], seed: int = 0
) -> tuple[str, list[CraftedModel]]:
    """Write a holdout file with one score column per target AUC, and log one model per column.

    :param tracking_uri: the MLflow server.
    :param root: where the holdout file goes.
    :param target_aucs: roughly the AUCs wanted (the exact ones are measured and returned).
    :param seed: the data's seed.
    :return: the holdout file's path and the models, in the order of ``target_aucs``.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], 200)
    frame = pd.DataFrame({TARGET: labels})
    for i, auc in enumerate(target_aucs):
        shift = np.sqrt(2.0) * norm.ppf(auc)
        frame[f"s{i}"] = rng.normal(size=labels.size) + shift * labels
    holdout = str(root / "holdout.parquet")
    write_dataset(frame, holdout)
    # No fluent global state (set_tracking_uri / set_experiment) may outlive this: later in-process tests
    # start runs of their own experiments on their own servers.
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("crafted-models")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("crafted-models")
    models = []
    with patch.dict(os.environ, {"MLFLOW_TRACKING_URI": tracking_uri}):
        for i in range(len(target_aucs)):
            with mlflow.start_run(run_name=f"s{i}", experiment_id=experiment_id) as run:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=ColumnScore(),
                    model_config={"column": f"s{i}"},
                    pip_requirements=["mlflow"],
                )
                mlflow.set_tag(Tag.MODEL_URI, info.model_uri)
            models.append(
                CraftedModel(
                    run.info.run_id, info.model_uri, float(roc_auc(labels.astype(float), frame[f"s{i}"].to_numpy()))
                )
            )
    return holdout, models


def task_script(operator: str, settings: dict[str, Any], run_id: str, try_number: int, task_id: str) -> str:
    """Python source of a task process: build ``operator`` of the registry module and execute it; the result
    is printed as JSON on the last line.

    :param operator: a class name of :mod:`airflow_mlops_provider.operators.registry`.
    :param settings: its arguments.
    :param run_id: the DAG run (the lease holder is ``race/<run_id>/<task_id>``).
    :param try_number: the task's try.
    :param task_id: the task's id.
    """
    return f"""
import json
from airflow_mlops_provider.operators import registry
from tests.fixtures.task_context import RuntimeTaskInstance
op = registry.{operator}(task_id={task_id!r}, **json.loads({json.dumps(settings)!r}))
ti = RuntimeTaskInstance("race", {run_id!r}, {task_id!r}, {try_number})
print(json.dumps(op.execute({{"ti": ti}})))
"""


def task_env(tracking_uri: str) -> dict[str, str]:
    """The environment of a task process: the ``mlflow_default`` connection on the server."""
    conn = json.dumps({"conn_type": "mlflow", "host": tracking_uri})
    return {**os.environ, "AIRFLOW_CONN_MLFLOW_DEFAULT": conn, "MLFLOW_TRACKING_URI": tracking_uri}


def start_task(server: TaskServer, script: str, env: dict[str, str]) -> ForkedTask:
    """Start a task process (forked by ``server``, a warm interpreter) from the project root."""
    return server.start(script, env)


def aliases(client: MlflowClient, model: str) -> dict[str, str]:
    """The model's aliases and the versions they point at."""
    return dict(client.get_registered_model(model).aliases)


def lease_tickets(client: MlflowClient, model: str) -> list[str]:
    """The versions (tickets) left in the model's promotion lease."""
    query = f"name = {filter_value(model + PROMOTION_LEASE_SUFFIX)}"
    return [str(v.version) for v in client.search_model_versions(query)]


def records(client: MlflowClient, model: str) -> dict[str, dict[str, Any]]:
    """Each version's recorded promotion decision (versions without one are absent)."""
    found = {}
    for version in client.search_model_versions(f"name = {filter_value(model)}"):
        tag = version.tags.get(Tag.PROMOTION)
        if tag:
            found[str(version.version)] = json.loads(tag)
    return found
