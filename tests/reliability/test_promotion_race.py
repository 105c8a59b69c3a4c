"""Twelve promotions of one model racing in separate processes on a real MLflow server.

Each version's holdout AUC is known (crafted models). Whatever order the tasks start in, the promotion
lease must serialize the decisions: afterwards the champion is the best version that met the bar, every
decision compared with the champion of its moment, and the aliases and decision tags tell one history.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, PROMOTED, REJECTED, Tag
from airflow_mlops_provider.operators.registry import RegisterModelOperator
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.task_server import TaskServer
from tests.reliability.registry_models import (
    TARGET,
    CraftedModel,
    aliases,
    craft_models,
    lease_tickets,
    records,
    start_task,
    task_env,
    task_script,
)

pytestmark = pytest.mark.integration

#: Holdout AUCs of the racing versions (the measured ones differ slightly); two miss the bar.
AUCS = [0.54, 0.91, 0.71, 0.99, 0.62, 0.83, 0.58, 0.95, 0.66, 0.87, 0.76, 0.97]
MIN_VALUE = 0.6


@pytest.fixture(scope="module")
def crafted(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[CraftedModel]]:
    """The holdout file and the twelve logged models."""
    return craft_models(mlflow_server.tracking_uri, tmp_path_factory.mktemp("race"), AUCS)


#: 12 task processes share the machine: a loaded 2-core box needs far longer than the 600 s default.
@pytest.mark.timeout(3000)
@pytest.mark.parametrize("seed", [11, 22])
def test_racing_promotions_leave_the_best_champion_and_one_history(
    seed: int,
    crafted: tuple[str, list[CraftedModel]],
    mlflow_connection: str,
    task_context: Callable[..., dict[str, Any]],
    task_server: TaskServer,
) -> None:
    holdout, models = crafted
    model = f"race_{seed}"
    client = MlflowClient(mlflow_connection)
    auc = {}
    for i, crafted_model in enumerate(models):
        register = RegisterModelOperator(
            task_id="register", model_name=model, mlflow_run_id=crafted_model.mlflow_run_id
        )
        auc[register.execute(task_context("register", f"run_{i}"))["version"]] = crafted_model.auc
    settings = {
        "model_name": model,
        "holdout_uri": holdout,
        "target": TARGET,
        "min_value": MIN_VALUE,
        "min_improvement": 0.0,
    }
    rng = random.Random(seed)
    order = list(auc)
    rng.shuffle(order)
    env = task_env(mlflow_connection)
    tasks = {}
    for version in order:
        script = task_script("PromoteModelOperator", {**settings, "version": version}, f"run_{version}", 1, "promote")
        tasks[version] = start_task(task_server, script, env)
        time.sleep(rng.uniform(0, 0.3))
    outputs = {version: task.communicate(timeout=1500)[0] for version, task in tasks.items()}
    retried = {}
    for version, task in tasks.items():
        if task.returncode != 0:  # one retry each, as retries=1
            script = task_script(
                "PromoteModelOperator", {**settings, "version": version}, f"run_{version}", 2, "promote"
            )
            retried[version] = start_task(task_server, script, env)
    for version, task in retried.items():
        outputs[version] += task.communicate(timeout=1500)[0]
    failed = {version: outputs[version][-3000:] for version, task in tasks.items() if task.returncode != 0}
    assert not failed, f"first tries failed (a conflict the lease should have resolved): {failed}"
    returned = {version: json.loads(outputs[version].strip().splitlines()[-1]) for version in tasks}

    # Every version exists, and the champion is the best one that met the bar.
    assert sorted(int(v.version) for v in client.search_model_versions(f"name = '{model}'")) == list(range(1, 13))
    best = max((v for v in auc if auc[v] >= MIN_VALUE), key=auc.__getitem__)
    found = aliases(client, model)
    assert found[CHAMPION] == best, (found, auc, order)

    # Each decision is recorded, returned as recorded, and scored the challenger at its known AUC.
    decided = records(client, model)
    assert set(decided) == set(auc)
    for version, record in decided.items():
        assert record == returned[version]
        assert record["challenger_score"] == pytest.approx(auc[version])
        tags = client.get_model_version(model, version).tags
        assert tags[Tag.PROMOTION_DECISION] == (PROMOTED if record["promote"] else REJECTED)
        assert tags[Tag.PROMOTION_CHAMPION_VERSION] == str(record["champion_version"])
        assert (Tag.REJECTED in tags) is (not record["promote"])

    # The promoted versions form one chain back from the champion, each better than the one it replaced.
    chain, version = [], best
    while version is not None:
        assert decided[version]["promote"], decided[version]
        chain.append(version)
        version = decided[version]["champion_version"]
    assert {v for v, r in decided.items() if r["promote"]} == set(chain)
    assert [auc[v] for v in reversed(chain)] == sorted(auc[v] for v in chain)
    assert found.get(PREVIOUS_CHAMPION) == decided[best]["champion_version"]

    # Each rejection compared with a champion of the chain at its true score, or missed the bar.
    for version, record in decided.items():
        if record["promote"]:
            continue
        if record["champion_version"] is None:
            assert auc[version] < MIN_VALUE, record
        else:
            assert record["champion_version"] in chain
            assert record["champion_score"] == pytest.approx(auc[record["champion_version"]])
            assert auc[version] < MIN_VALUE or auc[version] <= record["champion_score"], record
    assert lease_tickets(client, model) == []
