"""Registration and promotion killed (SIGKILL) at their failpoints and retried, on a real MLflow server.

Each case runs three CT runs in order, each a task process that registers its run's model and promotes
it (AUCs rising, so each should become champion). A seeded failpoint kills one pass; the retry must
finish the job: one model version per CT run, the last as champion, the one before as previous champion,
every decision recorded once, every alias move in the champion history once and in order, and no lease
ticket left behind.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, Tag
from airflow_mlops_provider.core.models.history import HistoryKind, read_history
from airflow_mlops_provider.failpoints import STATE_ENV
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.task_server import TaskServer
from tests.reliability.killing import run_with_retries
from tests.reliability.registry_models import (
    TARGET,
    CraftedModel,
    aliases,
    craft_models,
    lease_tickets,
    records,
    task_env,
)

#: Four task processes per case on a shared machine: longer than the 600 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3000)]

#: Each point and how many passes three CT runs make through it (between_aliases: promotions over a champion).
POINTS = {
    "registry.after_register": 3,
    "registry.after_decision": 3,
    "registry.between_aliases": 2,
    # Each alias move: champion (run 0), then previous_champion and champion (runs 1 and 2).
    "registry.after_history": 5,
}
RNG = random.Random(20261203)
#: Two distinct seeded hits per point: six kills.
CASES = [
    (point, hit) for point, passes in sorted(POINTS.items()) for hit in sorted(RNG.sample(range(1, passes + 1), 2))
]


@pytest.fixture(scope="module")
def crafted(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[CraftedModel]]:
    """Three models of rising AUC on one holdout file."""
    return craft_models(mlflow_server.tracking_uri, tmp_path_factory.mktemp("kills"), [0.7, 0.8, 0.9], seed=4)


def _ct_run_script(model: str, crafted: CraftedModel, holdout: str, run_id: str) -> str:
    """A task process: register the run's model, then promote the version (its try counted in the state folder)."""
    settings = {"model_name": model, "holdout_uri": holdout, "target": TARGET}
    return f"""
import json, os
from pathlib import Path
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from tests.fixtures.task_context import RuntimeTaskInstance
tries = Path(os.environ[{STATE_ENV!r}]) / "tries-{run_id}"
try_number = int(tries.read_text()) + 1 if tries.exists() else 1
tries.write_text(str(try_number))
ti = RuntimeTaskInstance("kills", {run_id!r}, "register_model", try_number)
register = RegisterModelOperator(
    task_id="register_model", model_name={model!r}, mlflow_run_id={crafted.mlflow_run_id!r}
)
registered = register.execute({{"ti": ti}})
ti = RuntimeTaskInstance("kills", {run_id!r}, "promote_model", try_number)
settings = json.loads({json.dumps(settings)!r})
promote = PromoteModelOperator(task_id="promote_model", version=registered["version"], **settings)
print(json.dumps(promote.execute({{"ti": ti}})))
"""


@pytest.mark.parametrize(("point", "hit"), CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_a_killed_registration_or_promotion_is_finished_by_its_retry(
    point: str,
    hit: int,
    crafted: tuple[str, list[CraftedModel]],
    mlflow_server: MlflowServer,
    tmp_path: Path,
    task_server: TaskServer,
) -> None:
    holdout, models = crafted
    model = f"kill_{point.split('.')[1]}_{hit}_{tmp_path.name[-6:]}"
    env = task_env(mlflow_server.tracking_uri)
    kills = 0
    returned: dict[str, Any] = {}
    for i, crafted_model in enumerate(models):
        attempts = run_with_retries(
            task_server,
            _ct_run_script(model, crafted_model, holdout, f"run_{i}"),
            point,
            hit,
            tmp_path,
            env=env,
            timeout=900,
        )
        assert attempts.codes[-1] == 0, attempts.output[-3000:]
        assert set(attempts.codes[:-1]) <= {-9}, attempts.codes  # only the kill made it retry
        kills += attempts.killed
        # The output is stdout then stderr: the result is the last JSON line.
        returned[str(i + 1)] = json.loads(next(x for x in reversed(attempts.output.splitlines()) if x.startswith("{")))
    assert kills == 1

    client = MlflowClient(mlflow_server.tracking_uri)
    versions = client.search_model_versions(f"name = '{model}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]  # one version per CT run
    assert sorted(v.run_id for v in versions) == sorted(m.mlflow_run_id for m in models)
    assert aliases(client, model) == {CHAMPION: "3", PREVIOUS_CHAMPION: "2"}
    decided = records(client, model)
    assert decided == returned
    assert [decided[v]["champion_version"] for v in ("1", "2", "3")] == [None, "1", "2"]
    assert all(decided[v]["promote"] for v in decided)
    for version in versions:
        assert version.tags[Tag.REGISTERED_BY].startswith("kills/run_")
        assert Tag.REJECTED not in version.tags
    assert lease_tickets(client, model) == []
    # The champion history: each move once, in order, by the CT run that made it.
    assert [(e.alias, e.from_version, e.to_version, e.kind, e.task) for e in read_history(client, model)] == [
        (CHAMPION, None, "1", HistoryKind.PROMOTION, "kills/run_0/promote_model"),
        (PREVIOUS_CHAMPION, None, "1", HistoryKind.PROMOTION, "kills/run_1/promote_model"),
        (CHAMPION, "1", "2", HistoryKind.PROMOTION, "kills/run_1/promote_model"),
        (PREVIOUS_CHAMPION, "1", "2", HistoryKind.PROMOTION, "kills/run_2/promote_model"),
        (CHAMPION, "2", "3", HistoryKind.PROMOTION, "kills/run_2/promote_model"),
    ]
