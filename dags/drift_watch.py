"""Event-driven drift detection: the triggerer watches the data, and each drift episode signals retraining."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_mlops_provider.config import data_dir
from airflow_mlops_provider.triggers.drift import DriftTrigger

DATA_DIR = data_dir()
#: The offline data of the customer_stats feature view, where dags/feature_repo puts it.
FEATURE_DATA = os.environ.get("MLOPS_FEATURE_DATA_URI", str(Path(__file__).parent / "feature_repo/data/offline"))
#: The asset continuous training is scheduled on (also fed by the drift_monitor DAG).
DRIFT = Asset(name="churn_drift", uri="mlops://drift/churn", group="drift")
#: Its events come from DriftTrigger, run by the triggerer while this DAG is unpaused.
DRIFT_WATCH = Asset(
    name="churn_drift_watch",
    uri="mlops://drift/churn/watch",
    group="drift",
    watchers=[
        AssetWatcher(
            name="churn_drift_trigger",
            trigger=DriftTrigger(
                current_uri=f"{FEATURE_DATA.rstrip('/')}/customer_stats/",
                model_name="churn",
                time_column="event_timestamp",
                lookback_seconds=86_400,
                state_uri=f"{DATA_DIR}/drift_state/churn_watch.json",
                cooldown_seconds=6 * 3600,
                max_events=2,
                period_seconds=86_400,
                report_prefix=f"{DATA_DIR}/drift_reports/churn_watch",
                poll_interval=600,
            ),
        )
    ],
)

DOC = """
### Event-driven drift detection for the churn model

No schedule: the triggerer runs a `DriftTrigger` for the `churn_drift_watch` asset. Every 10 minutes it
compares the last day of the `customer_stats` features (the Feast offline data that `feature_ingestion`
appends to) with the training set of the `champion` version of `churn`. It fires once per drift episode
(never twice for the same data, at most every 6 hours and twice a day), keeping its state in
`drift_state/churn_watch.json` across triggerer restarts, and stores Evidently's report of the drifted
window.

Each event runs this DAG, which forwards the episode's summary to the `churn_drift` asset:
continuous training is scheduled on it.
"""


@task(outlets=[DRIFT])
def signal_retraining() -> dict[str, Any]:
    """Emit ``churn_drift`` with the summary of the drift episode that triggered this run."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    events = context["triggering_asset_events"][DRIFT_WATCH]
    summary: dict[str, Any] = events[-1].extra.get("payload", {}) if events else {}
    keys = ("model_name", "model_version", "drifted_columns", "share", "report_uri")
    context["outlet_events"][DRIFT].extra = {key: summary.get(key) for key in keys}
    return summary


with DAG(
    dag_id="drift_watch",
    schedule=[DRIFT_WATCH],
    catchup=False,
    tags=["mlops", "drift", "event-driven"],
    doc_md=DOC,
):
    signal_retraining()
