"""Ten ``continuous_training`` runs of the same model at once, on the live prod stack's two Celery workers.

Each run trains with other hyperparameters (so the holdout AUCs differ), registers a version and competes for
``champion``. However the promotions interleave, the registry must end as if they had happened one at a time:
one version per run, exactly one champion, the best of the versions that passed the policy; each decision
recorded against the champion of its moment, and ``previous_champion`` the one the last promotion replaced.
No task may fail, or need a retry, for a conflict it could have resolved.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, Tag
from demo.api import AirflowApi
from tests.e2e.story import DEMO_TIMEOUT
from tests.reliability.live_runs import (
    MODEL,
    TRAINING,
    problems,
    promotion_record,
    run_id_for,
    versions_by_run,
    wait_for_runs,
)

RUNS = 10
#: Ten runs of five tasks on two single-slot workers, on a loaded 2-core machine.
RUNS_TIMEOUT = 1500.0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(DEMO_TIMEOUT + RUNS_TIMEOUT + 300)]


def conf(number: int) -> dict[str, Any]:
    """The params of run ``number``: few epochs (a short run), and its own seed and learning rate.

    :param number: 0 to ``RUNS - 1``.
    """
    return {"seed": 100 + number, "epochs": 1 + number % 3, "learning_rate": round(0.002 + 0.0015 * number, 4)}


def test_ten_parallel_runs_leave_one_best_champion(stack: dict[str, Any], api: AirflowApi) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack["mlflow"]["url"], registry_uri=stack["mlflow"]["url"])
    initial = client.get_registered_model(MODEL).aliases.get(CHAMPION)
    run_ids = [run_id_for(f"parallel_{number}") for number in range(RUNS)]
    for number, run_id in enumerate(run_ids):
        api.trigger(TRAINING, run_id, None, {"model_name": MODEL, **conf(number)})

    states = wait_for_runs(api, run_ids, RUNS_TIMEOUT)

    failed = {run_id: problems(api, stack, run_id) for run_id in run_ids}
    assert states == dict.fromkeys(run_ids, "success"), {r: p for r, p in failed.items() if p}
    assert {run_id: found for run_id, found in failed.items() if found} == {}
    versions = versions_by_run(stack["mlflow"]["url"], run_ids)
    assert {run_id: len(found) for run_id, found in versions.items()} == dict.fromkeys(run_ids, 1)
    records = {found[0].version: promotion_record(found[0]) for found in versions.values()}
    digests = {record["holdout_digest"] for record in records.values()}
    assert len(digests) == 1, f"the runs did not score on the same holdout rows: {digests}"

    # The moves form one chain from the initial champion: each promotion replaced the champion of its moment.
    promoted = {version: record for version, record in records.items() if record["promote"]}
    chain, current = [], initial
    while successors := [version for version, record in promoted.items() if record["champion_version"] == current]:
        assert len(successors) == 1, f"versions {successors} were all promoted over version {current}"
        current = successors[0]
        chain.append(current)
    assert sorted(chain) == sorted(promoted), f"promotions outside the chain from {initial}: {promoted}"
    aliases = client.get_registered_model(MODEL).aliases
    assert aliases.get(CHAMPION) == current, aliases
    if chain:
        assert aliases.get(PREVIOUS_CHAMPION) == promoted[current]["champion_version"], aliases

    # The champion is the best version that passed the policy; every decision used its champion's true score.
    scores = {version: record["challenger_score"] for version, record in records.items()}
    if initial is not None:
        scores[initial] = next(r["champion_score"] for r in records.values() if r["champion_version"] == initial)
    passing = {
        version: score
        for version, score in scores.items()
        if version not in records or score >= (records[version]["policy"]["min_value"] or float("-inf"))
    }
    assert scores[current] == pytest.approx(max(passing.values()), abs=1e-9), (current, scores)
    for version, record in records.items():
        if record["champion_version"] is not None:
            assert record["champion_score"] == pytest.approx(scores[record["champion_version"]], abs=1e-9), record
        if not record["promote"]:
            assert Tag.REJECTED in client.get_model_version(MODEL, version).tags, version
