"""The model_quality example DAG: on predictions (and daily), one quality check that emits decay through an alias."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import BundleDagBag, DagBag
from airflow.sdk import AssetAlias

from airflow_mlops_provider.contracts import predictions_asset, quality_decay_asset
from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.operators.quality import ModelQualityOperator
from tests.paths import DAGS


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def test_model_quality_runs_on_predictions_and_signals_decay_once_per_episode(bag: DagBag) -> None:
    dag = bag.dags["model_quality"]
    assert dag.timetable.asset_condition == predictions_asset("churn")
    (check,) = dag.tasks
    assert isinstance(check, ModelQualityOperator) and check.task_id == "check_quality"
    assert [type(outlet) for outlet in check.outlets] == [AssetAlias]  # a plain Asset would fire on every run
    assert check.decay_asset == quality_decay_asset("churn")
    assert check.entity_columns == ["customer_id"] and check.label_column == "churned"
    assert check.labels_uri.endswith("/ingested/") and check.window == "1D"
    assert check.episode_policy == EpisodePolicy(cooldown_seconds=3 * 86_400)
    assert dag.params["min_labels"] == 30 and dag.params["metric"] == "roc_auc"
