"""FeastApplyOperator refuses definitions that break the champion's feature service (real MLflow and Feast)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, Tag
from airflow_mlops_provider.core.features.feast_repo import open_store
from airflow_mlops_provider.operators.features import FeastApplyOperator

pytestmark = pytest.mark.integration
DEFINITIONS = "churn_features.py"


@pytest.fixture
def champion(mlflow_connection: str) -> str:
    """A registered model whose champion version was trained on feature service ``churn_v1``."""
    client = MlflowClient(mlflow_connection)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(name)
    run = client.create_run(experiment)
    client.create_registered_model(name)
    version = client.create_model_version(
        name, f"runs:/{run.info.run_id}/model", run.info.run_id, tags={Tag.FEATURE_SERVICE: "churn_v1"}
    )
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return name


def apply(context: Callable[..., dict[str, Any]], model_name: str | None) -> dict[str, Any]:
    result: dict[str, Any] = FeastApplyOperator(task_id="apply", model_name=model_name).execute(context("apply"))
    return result


def edit(repo: Path, old: str, new: str) -> None:
    source = (repo / DEFINITIONS).read_text()
    assert old in source
    (repo / DEFINITIONS).write_text(source.replace(old, new))


def served_features(repo: Path) -> dict[str, str]:
    view = open_store(str(repo)).get_feature_view("customer_stats")
    return {field.name: str(field.dtype) for field in view.features}


def test_a_breaking_change_is_refused_with_every_reason(
    feast_repo: Path, champion: str, task_context: Callable[..., dict[str, Any]]
) -> None:
    before = served_features(feast_repo)
    edit(feast_repo, '        Field(name="plan", dtype=String, description="basic, standard or premium."),\n', "")
    edit(feast_repo, 'Field(name="tenure_months", dtype=Int64', 'Field(name="tenure_months", dtype=Float64')
    with pytest.raises(AirflowFailException) as err:
        apply(task_context, champion)
    message = str(err.value)
    assert f"the champion of model {champion!r} uses feature service 'churn_v1'" in message
    assert "- feature 'customer_stats:tenure_months' changes dtype from Int64 to Float64" in message
    assert "- feature 'customer_stats:plan' is removed" in message
    assert served_features(feast_repo) == before, "nothing may be applied"


def test_removing_the_served_view_is_refused(
    feast_repo: Path, champion: str, task_context: Callable[..., dict[str, Any]]
) -> None:
    (feast_repo / DEFINITIONS).write_text("")
    (feast_repo / "probe_features.py").write_text("")
    with pytest.raises(AirflowFailException, match=r"feature service 'churn_v1' is removed\n- feature view"):
        apply(task_context, champion)
    assert open_store(str(feast_repo)).get_feature_service("churn_v1").name == "churn_v1"


def test_a_compatible_change_is_applied(
    feast_repo: Path, champion: str, task_context: Callable[..., dict[str, Any]]
) -> None:
    edit(
        feast_repo,
        '        Field(name="region", dtype=String, description="north, south, east or west."),\n',
        '        Field(name="region", dtype=String),\n        Field(name="contract_months", dtype=Int64),\n',
    )
    (feast_repo / "probe_features.py").write_text("")  # the probe view and service are not the champion's
    result = apply(task_context, champion)
    assert result == {
        "project": "churn",
        "feature_views": ["customer_stats"],
        "feature_services": ["churn_v1"],
        "protected_service": "churn_v1",
    }
    assert served_features(feast_repo)["contract_months"] == "Int64"
    assert [view.name for view in open_store(str(feast_repo)).list_feature_views()] == ["customer_stats"]
    assert not list(feast_repo.rglob("__pycache__")), "loading the definitions must not write into the repo"


def test_without_a_champion_anything_applies(
    feast_repo: Path, mlflow_connection: str, task_context: Callable[..., dict[str, Any]]
) -> None:
    edit(feast_repo, 'Field(name="tenure_months", dtype=Int64', 'Field(name="tenure_months", dtype=Float64')
    assert apply(task_context, f"unregistered-{uuid.uuid4().hex[:8]}")["protected_service"] is None
    assert served_features(feast_repo)["tenure_months"] == "Float64"
