"""The batch inference example DAG: scheduled on a new champion or fresh features, scoring the ingested window.

Parsed as Airflow's DAG processor parses a bundle: with its folder on ``sys.path`` (for ``churn_common``).
"""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import BundleDagBag, DagBag
from airflow.sdk import Asset, AssetAny

from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import Unscorable
from airflow_mlops_provider.operators.inference import BatchInferenceOperator
from tests.paths import DAGS


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def test_batch_inference_scores_the_ingested_window_with_online_features(bag: DagBag) -> None:
    dag = bag.dags["batch_inference"]
    (score,) = dag.tasks
    assert isinstance(score, BatchInferenceOperator) and score.task_id == "score_customers"
    champion = Asset(name="churn_model_champion", uri="mlflow://models/churn/champion", group="model")
    refreshed = Asset(name="churn_features_refreshed", uri="mlops://features/churn/refreshed", group="feature")
    assert dag.timetable.asset_condition == AssetAny(champion, refreshed)
    assert dag.catchup is False and dag.max_active_runs == 1
    assert score.outlets == [Asset(name="churn_predictions", uri="mlops://predictions/churn", group="model")]
    assert score.entities_uri == data_path(DataFolder.INGESTED, "") and score.features_uri is None
    assert score.feature_service == "churn_v1" and score.timestamp_column == "event_timestamp"
    assert score.model_name == "{{ params.model_name }}" and score.predictions_uri is None  # one file per run
    assert "params.window_hours / 24" in score.window_start and "run_after" in str(score.window_end)
    assert score.policy.action == Unscorable.DROP and score.policy.max_fraction == 0.05
    assert dag.params["window_hours"] == 240 and dag.params["model_name"] == "churn"
    assert score.owner == "ml-platform" and dag.doc_md


def test_the_window_template_renders_hours_before_the_run() -> None:
    from jinja2 import Template
    from pendulum import datetime, duration

    from dags.batch_inference import WINDOW_END, WINDOW_START

    run_after = datetime(2026, 3, 2, 12)
    values = {"dag_run": type("Run", (), {"run_after": run_after}), "params": {"window_hours": 6},
              "macros": type("M", (), {"timedelta": duration})}  # fmt: skip
    assert Template(WINDOW_START).render(values) == "2026-03-02T06:00:00+00:00"
    assert Template(WINDOW_END).render(values) == "2026-03-02T12:00:00+00:00"
