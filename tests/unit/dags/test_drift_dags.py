"""The drift example DAGs: a scheduled check that signals only on drift, and an event-driven watcher."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset, AssetAlias

from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.paths import DAGS

DAGS = DAGS
DRIFT = Asset(name="churn_drift", uri="mlops://drift/churn", group="drift")


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(str(DAGS))


def test_drift_monitor_checks_the_champion_and_emits_only_through_an_alias(bag: DagBag) -> None:
    check = bag.dags["drift_monitor"].get_task("check_drift")
    assert isinstance(check, DriftCheckOperator)
    assert check.upstream_task_ids == set()
    assert check.feature_view == "customer_stats"  # the Feast offline data, unless the current_uri param is set
    refreshed = Asset(name="churn_features_refreshed", uri="mlops://features/churn/refreshed", group="feature")
    assert bag.dags["drift_monitor"].timetable.asset_condition == refreshed
    assert [type(outlet) for outlet in check.outlets] == [AssetAlias]  # a plain Asset would fire on every run
    assert check.drift_asset == DRIFT


def test_drift_watch_is_scheduled_by_a_drift_trigger_and_forwards_to_the_drift_asset(bag: DagBag) -> None:
    dag = bag.dags["drift_watch"]
    (watched,) = dag.timetable.asset_condition.objects
    (watcher,) = watched.watchers
    assert isinstance(watcher.trigger, DriftTrigger)
    kwargs = watcher.trigger.serialize()[1]
    assert kwargs["model_name"] == "churn" and kwargs["state_uri"].endswith(".json")
    assert dag.get_task("signal_retraining").outlets == [DRIFT]
