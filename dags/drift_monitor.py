"""Drift monitor: after each ingestion (and daily), compare the latest features with the champion's training set."""

from __future__ import annotations

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param

from airflow_mlops_provider.config import data_dir
from airflow_mlops_provider.core.drift.episodes import EpisodePolicy
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.run_windows import days_before_run

DATA_DIR = data_dir()
WINDOW_START, WINDOW_END = days_before_run("params.window_days")
#: Updated by feature_ingestion once per run that ingested new batches.
FEATURES_REFRESHED = Asset(name="churn_features_refreshed", uri="mlops://features/churn/refreshed", group="feature")
#: Receives an event, with the model and the drifted columns, only when drift is found.
DRIFT = Asset(name="churn_drift", uri="mlops://drift/churn", group="drift")

DOC = """
### Drift monitor for the churn model

Runs whenever `feature_ingestion` has ingested new batches (the `churn_features_refreshed` asset), and
daily.

**check_drift** compares the last `window_days` days of the Feast feature view `customer_stats` (its
offline data; or the data at `current_uri`, e.g. batch-inference predictions) with the training set of
the `champion` version of `model_name` (found through its `mlops.dataset_uri` / `mlops.dataset_digest`
tags), on the model's features, with Evidently's tests. The report is linked from the task. When the
share of drifted columns reaches `drift_share`, an event of the `churn_drift` asset is emitted, and
`continuous_training` retrains on it: once per drift episode against a champion, at most every 3 days
(state in `[mlops] data_dir`/drift_state/churn_monitor.json), so re-checking the same data never retrains
twice. The task is skipped while there is no champion yet, or no data in the window.
"""

with DAG(
    dag_id="drift_monitor",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=FEATURES_REFRESHED
    ),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "drift", "evidently"],
    doc_md=DOC,
    params={
        "model_name": Param("churn", type="string", description="Registered model whose champion is the reference"),
        "current_uri": Param("", type="string",
                             description="Current data URI (local or s3://); empty: the customer_stats features"),
        "window_days": Param(7, type="integer", minimum=1, description="Days of data before the run to check"),
        "drift_share": Param(0.5, type="number", exclusiveMinimum=0, maximum=1,
                             description="Share of drifted columns at which the dataset drifts"),
    },
):  # fmt: skip
    DriftCheckOperator(
        task_id="check_drift",
        model_name="{{ params.model_name }}",
        current_uri="{{ params.current_uri }}",
        feature_view="customer_stats",
        time_column="event_timestamp",
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        drift_config={"drift_share": "{{ params.drift_share }}"},
        drift_asset=DRIFT,
        state_uri=f"{DATA_DIR}/drift_state/churn_monitor.json",
        # At most one drift-triggered retraining every 3 days: a retrained champion's training rows still
        # mostly predate the shift until the training window moves past it, so the next check drifts again.
        episode_policy=EpisodePolicy(cooldown_seconds=3 * 86_400),
    )
