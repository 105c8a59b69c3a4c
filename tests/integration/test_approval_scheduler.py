"""Human approval of promotions under a real Airflow (``airflow standalone``: scheduler, DAG processor,
triggerer, API server) on loopback, answered through the REST API, on the real MLflow server.

One stack for every case: approve (the aliases move, the person and reason are recorded, one champion
Asset event), reject (the version is tagged rejected with the reason, the champion stays), timeout (the
approval task fails after its response timeout, nothing changes), and approval off (the promotion moves the
aliases itself; the approval and apply tasks are skipped).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PENDING_APPROVAL, PREVIOUS_CHAMPION, PROMOTED, REJECTED, Tag
from airflow_mlops_provider.core.models.history import HistoryKind, read_history
from demo.api import AirflowApi
from demo.embedded import AirflowStandalone
from demo.processes import BIN_DIR, ManagedProcess, Resource, free_ports, wait_for
from demo.stack import AirflowSite
from tests.fixtures.mlflow_server import MlflowServer
from tests.integration.approval.approval_dag import MODEL
from tests.paths import REPO
from tests.reliability.registry_models import CraftedModel, craft_models

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

DAG_FILE = Path(__file__).parent / "approval" / "approval_dag.py"
FINISHED = {"success", "failed", "skipped", "upstream_failed"}


class Stack:
    """The running Airflow, its API client, and the crafted models."""

    def __init__(
        self, api: AirflowApi, base_url: str, holdout: str, models: list[CraftedModel], log_file: Path
    ) -> None:
        self.api, self.base_url, self.holdout, self.models = api, base_url, holdout, models
        self.log_file = log_file

    def trigger(self, dag_id: str, run_id: str, model: CraftedModel, require_approval: bool = True) -> None:
        conf = {"mlflow_run_id": model.mlflow_run_id, "holdout": self.holdout, "require_approval": require_approval}
        self.api.trigger(dag_id, run_id, None, conf)

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {ti["task_id"]: ti["state"] for ti in self.api.task_instances(dag_id, run_id)}

    def wait_task(self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 300) -> None:
        def reached() -> bool | None:
            state = self.states(dag_id, run_id).get(task_id)
            if state in FINISHED and state not in states:
                raise AssertionError(f"{task_id} ended {state}")
            return True if state in states else None

        try:
            wait_for(f"{dag_id}/{run_id}/{task_id} in {states}", reached, timeout, [])
        except Exception:
            now = self.states(dag_id, run_id)
            pytest.fail(f"{task_id} of {run_id} did not reach {states}: {now}\n{self.logs(dag_id, run_id)}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, str]:
        wait_for(
            f"{dag_id}/{run_id} to finish",
            lambda: self.api.dag_run(dag_id, run_id)["state"] in ("success", "failed") or None,
            timeout,
            [],
        )
        return self.states(dag_id, run_id)

    def expect(self, dag_id: str, run_id: str, expected: dict[str, str]) -> None:
        """Wait for the run to finish and assert its tasks' states, showing the failed tasks' logs if not.

        :param expected: states by task id.
        """
        states = self.wait_run(dag_id, run_id)
        got = {task_id: states.get(task_id) for task_id in expected}
        assert got == expected, f"{run_id}: {states}\n{self.logs(dag_id, run_id)}"

    def answer(self, dag_id: str, run_id: str, option: str, reason: str) -> dict[str, Any]:
        """Answer the approval request through the REST API, at once: the resumed task is queued before the
        executor has read the exit of the process that paused, the race ``resumed_tasks`` closes."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve_promotion/-1/hitlDetails"
        body = {"chosen_options": [option], "params_input": {"reason": reason}}
        response = httpx.patch(f"{self.base_url}{path}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def request(self, dag_id: str, run_id: str) -> dict[str, Any]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve_promotion/-1/hitlDetails"
        response = httpx.get(f"{self.base_url}{path}", timeout=30)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def logs(self, dag_id: str, run_id: str) -> str:
        """The failed tasks' logs, and the Airflow processes' errors and warnings about this run."""
        tasks = [
            f"--- {ti['task_id']} ({ti['state']})\n{self.api.task_log(ti)[-3000:]}"
            for ti in self.api.task_instances(dag_id, run_id)
            if ti["state"] in ("failed", "up_for_retry")
        ]
        lines = self.log_file.read_text(errors="replace").splitlines()
        said = [line for line in lines if run_id in line and ("[error" in line or "[warning" in line)]
        return "\n".join([*tasks, "--- Airflow errors and warnings", *said[-20:]])


def _version_of(client: MlflowClient, model: CraftedModel) -> str:
    (version,) = client.search_model_versions(f"name = '{MODEL}' and run_id = '{model.mlflow_run_id}'")
    return str(version.version)


@pytest.fixture(scope="module")
def stack(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("approval_airflow")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    holdout, models = craft_models(mlflow_server.tracking_uri, home, [0.7, 0.8, 0.9, 0.95], seed=5)
    api_port, worker_log_port, trigger_log_port = free_ports(3)
    site = AirflowSite(
        home=home / "airflow",
        dags_folder=dags,
        api_host="127.0.0.1",
        api_port=api_port,
        worker_log_port=worker_log_port,
        trigger_log_port=trigger_log_port,
        mlflow_url=mlflow_server.tracking_uri,
        data_dir=str(home / "data"),
        feast_config={"project": "unused"},
        feature_data_uri=str(home / "data" / "offline"),
    )
    site.make_dirs()
    airflow = AirflowStandalone(site)
    resources: list[Resource] = []
    api = AirflowApi(site.url)
    try:
        # The crafted models' class lives in tests/: the task processes import it from the repository root.
        env = airflow.env() | {"PYTHONPATH": str(REPO)}
        command = [str(BIN_DIR / "airflow"), "standalone"]
        resources.append(ManagedProcess.start(airflow.NAME, command, env, site.home / "standalone.log"))
        airflow.wait_ready(resources)
        for dag_id in ("approval_test", "approval_timeout", "champion_consumer"):
            wait_for(f"{dag_id} parsed", lambda d=dag_id: api.dag(d), 180, resources)  # type: ignore[misc]
        for dag_id in ("approval_test", "approval_timeout"):
            api.set_paused(dag_id, False)
        yield Stack(api, site.url, holdout, models, site.home / "standalone.log")
    finally:
        api.close()
        for resource in resources:
            resource.stop(20)


def test_approve_reject_and_timeout_through_the_scheduler_and_rest_api(
    stack: Stack, mlflow_server: MlflowServer
) -> None:
    client = MlflowClient(mlflow_server.tracking_uri)
    started = time.monotonic()
    # The timeout case waits 20 s for nobody: it runs alongside the first approval.
    stack.trigger("approval_test", "approve_1", stack.models[0])
    stack.trigger("approval_timeout", "timeout_1", stack.models[2])

    # 1. Approve: the request shows the scores, policy and lineage; the answer moves the aliases.
    stack.wait_task("approval_test", "approve_1", "approve_promotion", {"awaiting_input"})
    request = stack.request("approval_test", "approve_1")
    assert request["options"] == ["Approve", "Reject"] and "reason" in request["params"]
    assert "passed the promotion policy" in request["body"] and "roc_auc" in request["body"]
    assert f"#/models/{MODEL}/versions/" in request["body"]
    approved = _version_of(client, stack.models[0])
    pending = client.get_model_version(MODEL, approved).tags
    assert pending[Tag.PROMOTION_DECISION] == PENDING_APPROVAL
    assert dict(client.get_registered_model(MODEL).aliases) == {}  # nothing moves before the answer
    answered = stack.answer("approval_test", "approve_1", "Approve", "holdout gain confirmed")
    person = answered["responded_by"]["name"]
    stack.expect("approval_test", "approve_1", {"approve_promotion": "success", "apply_promotion": "success"})
    assert dict(client.get_registered_model(MODEL).aliases) == {CHAMPION: approved}
    tags = client.get_model_version(MODEL, approved).tags
    assert tags[Tag.PROMOTION_DECISION] == PROMOTED
    assert (tags[Tag.REVIEWED_BY], tags[Tag.REVIEW_REASON]) == (person, "holdout gain confirmed")
    record = json.loads(tags[Tag.PROMOTION])
    assert record["promote"] and not record["awaiting_approval"] and record["reviewed_by"] == person

    # 2. Timeout: nobody answered in 20 s; the approval failed, nothing was applied.
    stack.expect("approval_timeout", "timeout_1", {"approve_promotion": "failed", "apply_promotion": "upstream_failed"})

    # 3. Reject: the version is tagged rejected with the person's reason; the champion stays.
    stack.trigger("approval_test", "reject_1", stack.models[1])
    stack.wait_task("approval_test", "reject_1", "approve_promotion", {"awaiting_input"})
    stack.answer("approval_test", "reject_1", "Reject", "wait for the quarterly review")
    stack.expect("approval_test", "reject_1", {"approve_promotion": "success", "apply_promotion": "success"})

    # 4. Approval off: the promotion moves the aliases itself; approval and apply are skipped.
    stack.trigger("approval_test", "direct_1", stack.models[3], require_approval=False)
    direct = {"promote_model": "success", "approve_promotion": "skipped", "apply_promotion": "skipped"}
    stack.expect("approval_test", "direct_1", direct)

    rejected, timed, direct_v = (_version_of(client, m) for m in stack.models[1:])
    rejected_tags = client.get_model_version(MODEL, rejected).tags
    assert rejected_tags[Tag.PROMOTION_DECISION] == REJECTED
    assert rejected_tags[Tag.REJECTED] == f"rejected by {person}: wait for the quarterly review"
    timed_tags = client.get_model_version(MODEL, timed).tags
    assert timed_tags[Tag.PROMOTION_DECISION] == PENDING_APPROVAL and Tag.REVIEWED_BY not in timed_tags
    assert dict(client.get_registered_model(MODEL).aliases) == {CHAMPION: direct_v, PREVIOUS_CHAMPION: approved}
    history = [(e.alias, e.from_version, e.to_version, e.kind, e.by) for e in read_history(client, MODEL)]
    promoter = "approval_test/direct_1/promote_model"
    assert history == [
        (CHAMPION, None, approved, HistoryKind.APPROVAL, person),
        (PREVIOUS_CHAMPION, None, approved, HistoryKind.PROMOTION, promoter),
        (CHAMPION, approved, direct_v, HistoryKind.PROMOTION, promoter),
    ]
    # The champion Asset: one event per new champion (the approval, the direct promotion), none otherwise.
    events = stack.api.asset_events(f"{MODEL}_model_champion")
    assert sorted((e["source_run_id"], e["source_task_id"]) for e in events) == [
        ("approve_1", "apply_promotion"),
        ("direct_1", "promote_model"),
    ]
    print(f"approval scheduler test: {time.monotonic() - started:.0f} s after the stack was up")
