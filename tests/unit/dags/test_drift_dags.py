"""The drift example DAGs: a scheduled check that signals only on drift, and an event-driven watcher.

Parsed as Airflow's DAG processor parses a bundle: with its folder on ``sys.path`` (for ``churn_common``).
"""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import BundleDagBag, DagBag
from airflow.sdk import Asset, AssetAlias

from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftWindow, EpisodePolicy
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.triggers.drift import DriftTrigger
from tests.paths import DAGS

DRIFT = Asset(name="churn_drift", uri="mlops://drift/churn", group="drift")


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def test_drift_monitor_checks_the_champion_and_emits_only_through_an_alias(bag: DagBag) -> None:
    check = bag.dags["drift_monitor"].get_task("check_drift")
    assert isinstance(check, DriftCheckOperator)
    assert check.upstream_task_ids == set()
    assert check.feature_view == "customer_stats"  # the Feast offline data, unless the current_uri param is set
    assert check.window.time_column == "event_timestamp" and "params.window_days" in str(check.window.start)
    refreshed = Asset(name="churn_features_refreshed", uri="mlops://features/churn/refreshed", group="feature")
    assert bag.dags["drift_monitor"].timetable.asset_condition == refreshed
    assert [type(outlet) for outlet in check.outlets] == [AssetAlias]  # a plain Asset would fire on every run
    assert check.drift_asset == DRIFT
    assert check.state_uri == data_path(DataFolder.DRIFT_STATE, "churn_monitor.json")
    assert check.episode_policy == EpisodePolicy(cooldown_seconds=3 * 86_400)


def test_drift_watch_is_scheduled_by_a_drift_trigger_and_forwards_to_the_drift_asset(bag: DagBag) -> None:
    dag = bag.dags["drift_watch"]
    (watched,) = dag.timetable.asset_condition.objects
    (watcher,) = watched.watchers
    assert isinstance(watcher.trigger, DriftTrigger)
    spec = DriftCheckSpec.from_dict(watcher.trigger.serialize()[1]["spec"])
    assert spec.model_name == "churn" and spec.current_uri.endswith("/customer_stats/")
    assert spec.window == DriftWindow("event_timestamp", lookback_seconds=86_400)
    assert spec.state_uri == data_path(DataFolder.DRIFT_STATE, "churn_watch.json")
    assert spec.episode_policy == EpisodePolicy(cooldown_seconds=6 * 3600, max_events=2, period_seconds=86_400)
    assert spec.report_prefix == data_path(DataFolder.DRIFT_REPORTS, "churn_watch")
    assert watcher.trigger.poll_interval == 600
    assert dag.get_task("signal_retraining").outlets == [DRIFT]
