"""Event-driven drift detection: the triggerer watches the data, and each drift episode signals retraining."""

from __future__ import annotations

from airflow.sdk import DAG, AssetWatcher

from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import CHAMPION, drift_watch_asset
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftWindow, EpisodePolicy
from airflow_mlops_provider.operators.drift import ForwardDriftEventOperator
from airflow_mlops_provider.triggers.drift import DriftTrigger

from churn_common import DRIFT, FEATURE_VIEW, FEATURE_VIEW_DATA, MODEL_NAME, OWNER, TIME_COLUMN

#: The last day of the feature view's offline data against the champion's training set, every 10 minutes.
CHECK = DriftCheckSpec(
    current_uri=FEATURE_VIEW_DATA,
    model_name=MODEL_NAME,
    window=DriftWindow(TIME_COLUMN, lookback_seconds=86_400),
    state_uri=data_path(DataFolder.DRIFT_STATE, "churn_watch.json"),
    episode_policy=EpisodePolicy(cooldown_seconds=6 * 3600, max_events=2, period_seconds=86_400),
    report_prefix=data_path(DataFolder.DRIFT_REPORTS, "churn_watch"),
)
#: Its events come from DriftTrigger, run by the triggerer while this DAG is unpaused.
DRIFT_WATCH = drift_watch_asset(
    MODEL_NAME, [AssetWatcher(name=f"{MODEL_NAME}_drift_trigger", trigger=DriftTrigger(spec=CHECK, poll_interval=600))]
)

DOC = f"""
### Event-driven drift detection for the {MODEL_NAME} model

No schedule: the triggerer runs a `DriftTrigger` for the `{DRIFT_WATCH.name}` asset. Every 10 minutes it
looks at the `{FEATURE_VIEW}` features (the Feast offline data that `feature_ingestion` appends to) and
at the `{CHAMPION}` version of `{MODEL_NAME}`; when either changed, it compares the last day of features
with that version's training set, in a child process. It fires once per drift episode (never twice for
the same data, at most every 6 hours and twice a day), keeping its state in `{CHECK.state_uri}` across
triggerer restarts, and stores each check's summary, and Evidently's report of drifted windows, under
`{CHECK.report_prefix}`.

Each event runs this DAG, which forwards the episode's summary to the `{DRIFT.name}` asset:
continuous training is scheduled on it.
"""


with DAG(
    dag_id="drift_watch",
    schedule=[DRIFT_WATCH],
    catchup=False,
    tags=["mlops", "drift", "event-driven"],
    doc_md=DOC,
    default_args={"owner": OWNER},
):
    ForwardDriftEventOperator(
        task_id="signal_retraining",
        watch_asset=DRIFT_WATCH,
        drift_asset=DRIFT,
        doc_md="Forwards the drift episode's summary from the watcher's event to the drift Asset.",
    )
