"""Drift monitor: after each ingestion (and daily), compare the latest features with the champion's training set."""

from __future__ import annotations

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import CHAMPION, Tag
from airflow_mlops_provider.core.drift.spec import DriftWindow, EpisodePolicy
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.run_windows import days_before_run

from churn_common import DRIFT, FEATURE_VIEW, FEATURES_REFRESHED, MODEL_NAME, NAME_PATTERN, OWNER, TIME_COLUMN

WINDOW_START, WINDOW_END = days_before_run("params.window_days")
#: The episode state: once per drift episode, at most every 3 days.
STATE_URI = data_path(DataFolder.DRIFT_STATE, "churn_monitor.json")

DOC = f"""
### Drift monitor for the {MODEL_NAME} model

Runs whenever `feature_ingestion` has ingested new batches (the `{FEATURES_REFRESHED.name}` asset), and
daily.

**check_drift** compares the last `window_days` days of the Feast feature view `{FEATURE_VIEW}` (its
offline data; or the data at `current_uri`, e.g. batch-inference predictions) with the training set of
the `{CHAMPION}` version of `model_name` (found through its `{Tag.DATASET_URI}` / `{Tag.DATASET_DIGEST}`
tags), on the model's features, with Evidently's tests. The report is linked from the task. When the
share of drifted columns reaches `drift_share`, an event of the `{DRIFT.name}` asset is emitted, and
`continuous_training` retrains on it: once per drift episode against a champion, at most every 3 days
(state in `{STATE_URI}`), so re-checking the same data never retrains twice. The task is skipped while
there is no champion yet, or no data in the window.
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
    default_args={"owner": OWNER},
    params={
        "model_name": Param(MODEL_NAME, type="string", minLength=1, maxLength=128, pattern=NAME_PATTERN,
                            description="Registered model whose champion is the reference"),
        "current_uri": Param("", type="string", maxLength=1024,
                             description=f"Current data URI (local or s3://); empty: the {FEATURE_VIEW} features"),
        "window_days": Param(7, type="integer", minimum=1, maximum=365,
                             description="Days of data before the run to check"),
        "drift_share": Param(0.5, type="number", exclusiveMinimum=0, maximum=1,
                             description="Share of drifted columns at which the dataset drifts"),
    },
):  # fmt: skip
    DriftCheckOperator(
        task_id="check_drift",
        model_name="{{ params.model_name }}",
        current_uri="{{ params.current_uri }}",
        feature_view=FEATURE_VIEW,
        window=DriftWindow(TIME_COLUMN, start=WINDOW_START, end=WINDOW_END),
        drift_config={"drift_share": "{{ params.drift_share }}"},
        drift_asset=DRIFT,
        state_uri=STATE_URI,
        # At most one drift-triggered retraining every 3 days: a retrained champion's training rows still
        # mostly predate the shift until the training window moves past it, so the next check drifts again.
        episode_policy=EpisodePolicy(cooldown_seconds=3 * 86_400),
        doc_md="Compares the window's features with the champion's training set; on drift, stores Evidently's "
        "report (linked as **Drift report**) and emits the drift Asset once per episode. Skipped without a "
        "champion or data.",
    )
