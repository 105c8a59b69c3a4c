"""Runs of ``continuous_training`` on the live prod stack, as the reliability tests start, await and read them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_mlops_provider.contracts import Tag
from demo.api import AirflowApi
from demo.processes import StackError
from demo.runs import read_log_files

TRAINING = "continuous_training"
MODEL = "churn"
ENDED = ("success", "failed")
#: The tasks of continuous_training that ask a person and apply the answer (skipped without require_approval).
APPROVAL_TASKS = ("approve_promotion", "apply_promotion")
POLL_SECONDS = 2.0


def run_id_for(label: str) -> str:
    """A run id no other run has: ``<label>__<utc time>``.

    :param label: what the run is for.
    """
    return f"{label}__{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"


def wait_for_runs(api: AirflowApi, run_ids: Iterable[str], timeout: float) -> dict[str, str]:
    """Wait until every run has ended; return the state of each (``running``/``queued`` left at the timeout).

    :param api: the Airflow API.
    :param run_ids: the runs of ``continuous_training``.
    :param timeout: seconds to wait.
    """
    wanted = set(run_ids)
    deadline = time.monotonic() + timeout
    while True:
        states = {run["dag_run_id"]: run["state"] for run in api.dag_runs(TRAINING) if run["dag_run_id"] in wanted}
        if (set(states) == wanted and all(state in ENDED for state in states.values())) or time.monotonic() > deadline:
            return states
        time.sleep(POLL_SECONDS)


def problems(api: AirflowApi, stack: dict[str, Any], run_id: str) -> list[str]:
    """Each task instance of a run that did not succeed at its first try (or, for the approval tasks, was not
    skipped), with the end of its log.

    :param api: the Airflow API.
    :param stack: ``stack.json`` of the live demo.
    :param run_id: the run.
    """
    found = []
    for ti in api.task_instances(TRAINING, run_id):
        # With require_approval off (the default), the approval tasks are skipped by design.
        # A task skipped through its upstream never runs: try 0.
        if ti["task_id"] in APPROVAL_TASKS:
            unexpected = ti["state"] != "skipped" or ti["try_number"] > 1
        else:
            unexpected = ti["state"] != "success" or ti["try_number"] != 1
        if unexpected:
            try:
                log = api.task_log(ti)
            except StackError:
                log = read_log_files(Path(stack["airflow"]["home"]) / "logs", ti)
            tail = "\n".join(log.splitlines()[-30:])
            found.append(f"{ti['task_id']}: {ti['state']} at try {ti['try_number']}\n{tail}")
    return found


def versions_by_run(mlflow_url: str, run_ids: Iterable[str]) -> dict[str, list[Any]]:
    """The model versions each Airflow run registered (tag ``mlops.airflow_run_id``).

    :param mlflow_url: the tracking server.
    :param run_ids: the Airflow runs.
    """
    from mlflow import MlflowClient

    wanted = set(run_ids)
    found: dict[str, list[Any]] = {run_id: [] for run_id in wanted}
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    for version in client.search_model_versions(f"name = '{MODEL}'"):
        run_id = version.tags.get(Tag.AIRFLOW_RUN_ID)
        if run_id in wanted:
            found[run_id].append(version)
    return found


def promotion_record(version: Any) -> dict[str, Any]:
    """The promotion decision recorded on a model version (tag ``mlops.promotion``).

    :param version: an MLflow ``ModelVersion``.
    """
    record: dict[str, Any] = json.loads(version.tags[Tag.PROMOTION])
    return record
