"""The registry area's bad-input corpus (tests/reliability/bad_inputs/registry/cases.json), fed to the
operators a DAG would run, against a real MLflow server.

Each case must fail the task without retry, with its message, before anything is registered, tagged or
promoted: the registry looks the same after every case, and across the corpus nothing is promoted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, Tag
from airflow_mlops_provider.operators.registry import (
    PromoteModelOperator,
    RegisterModelOperator,
    RollbackModelOperator,
)
from tests.fixtures.mlflow_server import MlflowServer
from tests.reliability.registry_models import TARGET, CraftedModel, craft_models

pytestmark = pytest.mark.integration

CASES = json.loads((Path(__file__).parent / "bad_inputs" / "registry" / "cases.json").read_text())
MODEL = "bad_inputs_registry"
Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def registry(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Model ``bad_inputs_registry``: v1 (AUC ~0.7) is champion, v2 (AUC ~0.9) would beat it."""
    holdout, models = craft_models(mlflow_server.tracking_uri, tmp_path_factory.mktemp("bad"), [0.7, 0.9], seed=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": mlflow_server.tracking_uri})
        )
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
        ti = {"ti": _TI()}
        for model in models:
            RegisterModelOperator(task_id="register", model_name=MODEL, mlflow_run_id=model.mlflow_run_id).execute(ti)
        PromoteModelOperator(
            task_id="promote", model_name=MODEL, version="1", holdout_uri=holdout, target=TARGET
        ).execute(ti)
        yield {"holdout": holdout, "models": models}


class _TI:
    dag_id, run_id, task_id, try_number = "bad_inputs", "setup", "setup", 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _promote(holdout: str, **settings: Any) -> PromoteModelOperator:
    arguments = {"model_name": MODEL, "version": "2", "holdout_uri": holdout, "target": TARGET, **settings}
    return PromoteModelOperator(task_id="promote_model", **arguments)


def _feed(case: str, holdout: str, models: list[CraftedModel]) -> Any:
    """The operator call of each case."""
    feeds: dict[str, Callable[[], Any]] = {
        "unregistered_model": lambda: _promote(holdout, model_name="no_such_model", version="1"),
        "unknown_version": lambda: _promote(holdout, version="99"),
        "unknown_metric": lambda: _promote(holdout, metric="f1"),
        "metric_of_another_problem": lambda: _promote(holdout, metric="rmse"),
        "unknown_problem_type": lambda: _promote(holdout, problem_type="multiclass"),
        "unknown_direction": lambda: _promote(holdout, direction="upward"),
        "nan_min_value": lambda: _promote(holdout, min_value="nan"),
        "inf_min_value": lambda: _promote(holdout, min_value="inf"),
        "out_of_range_min_value": lambda: _promote(holdout, min_value="1.5"),
        "negative_min_value": lambda: _promote(holdout, min_value="-0.2"),
        "non_numeric_min_value": lambda: _promote(holdout, min_value="high"),
        "nan_min_improvement": lambda: _promote(holdout, min_improvement="nan"),
        "inf_min_improvement": lambda: _promote(holdout, min_improvement="-inf"),
        "negative_min_improvement": lambda: _promote(holdout, min_improvement="-0.1"),
        "non_numeric_min_improvement": lambda: _promote(holdout, min_improvement="a lot"),
        "model_name_with_both_quotes": lambda: RegisterModelOperator(
            task_id="register", model_name='it\'s "quoted"', mlflow_run_id=models[1].mlflow_run_id
        ),
        "tracking_uri_with_a_space": lambda: _promote(holdout, mlflow_conn_id="mlflow_bad"),
        "tracking_uri_unknown_scheme": lambda: RegisterModelOperator(
            task_id="register", model_name=MODEL, mlflow_run_id=models[1].mlflow_run_id, mlflow_conn_id="mlflow_bad"
        ),
        "run_that_does_not_exist": lambda: RegisterModelOperator(
            task_id="register", model_name=MODEL, mlflow_run_id="0123456789abcdef0123456789abcdef"
        ),
        "rollback_without_previous_champion": lambda: RollbackModelOperator(task_id="rollback", model_name=MODEL),
        "rollback_of_unknown_model": lambda: RollbackModelOperator(task_id="rollback", model_name="no_such_model"),
    }
    return feeds[case]()


_BAD_HOSTS = {"tracking_uri_with_a_space": "mlflow server:5000", "tracking_uri_unknown_scheme": "ftp://mlflow"}


def _registry_state(client: MlflowClient) -> dict[str, Any]:
    """Every registered model with its aliases and its versions' tags."""
    return {
        model.name: (
            dict(model.aliases),
            {v.version: dict(v.tags) for v in client.search_model_versions(f"name = '{model.name}'")},
        )
        for model in client.search_registered_models()
    }


def test_the_corpus_has_a_feed_per_case_and_enough_cases() -> None:
    assert len(CASES) >= 8
    for case in CASES:
        assert _feed(case["case"], "h.parquet", [CraftedModel("r", "u", 0.5)] * 2) is not None


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_bad_input_fails_clearly_and_changes_nothing(
    case: dict[str, Any],
    registry: dict[str, Any],
    mlflow_connection: str,
    task_context: Context,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case["case"] in _BAD_HOSTS:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MLFLOW_BAD", json.dumps({"conn_type": "mlflow", "host": _BAD_HOSTS[case["case"]]})
        )
    client = MlflowClient(mlflow_connection)
    before = _registry_state(client)
    operator = _feed(case["case"], registry["holdout"], registry["models"])
    with pytest.raises(AirflowFailException) as raised:
        operator.execute(task_context(operator.task_id, run_id=f"bad_{case['case']}"))
    assert type(raised.value).__name__ == case["error"]
    assert re.search(case["match"], str(raised.value)), str(raised.value)
    assert _registry_state(client) == before


def test_nothing_was_promoted_across_the_corpus(registry: dict[str, Any], mlflow_connection: str) -> None:
    client = MlflowClient(mlflow_connection)
    assert dict(client.get_registered_model(MODEL).aliases) == {CHAMPION: "1"}
    promoted = [
        version.version
        for version in client.search_model_versions(f"name = '{MODEL}'")
        if json.loads(version.tags.get(Tag.PROMOTION, '{"promote": false}'))["promote"]
    ]
    assert promoted == ["1"]  # the setup's first promotion, and nothing since
    assert Tag.PROMOTION not in client.get_model_version(MODEL, "2").tags
    names = {model.name for model in client.search_registered_models()}
    assert not names & {"no_such_model", "no_such_model.promotion-lease", 'it\'s "quoted"'}
