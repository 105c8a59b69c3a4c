"""Drift monitor: every day, compare the latest data with the champion's training set."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, CronTriggerTimetable, Param, task

from airflow_mlops_provider.operators.drift import DriftCheckOperator

#: Receives an event, with the model and the drifted columns, only when drift is found.
DRIFT = Asset(name="churn_drift", uri="mlops://drift/churn", group="drift")

DOC = """
### Drift monitor for the churn model

1. **current_window** takes the data at `current_uri` (features or batch-inference predictions), or
   generates a demo day of churn rows, shifted by `covariate_drift`.
2. **check_drift** compares it with the training set of the `champion` version of `model_name` (found
   through its `mlops.dataset_uri` / `mlops.dataset_digest` tags), on the model's features, with
   Evidently's tests. The report is linked from the task; when the share of drifted columns reaches
   `drift_share`, an event of the `churn_drift` asset is emitted, which retraining can be scheduled on.
"""


@task
def current_window() -> dict[str, Any]:
    """Resolve the current data: the given URI, or a freshly generated demo day."""
    from airflow.sdk import conf, get_current_context

    from airflow_mlops_provider.core import demo_data
    from airflow_mlops_provider.core.datasets import write_dataset

    context = get_current_context()
    params, run_id = context["params"], context["run_id"]
    if params["current_uri"]:
        return {"uri": params["current_uri"]}
    import pandas as pd

    start = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=1)
    frame = demo_data.generate_batch(
        params["rows"], start, seed=params["seed"], covariate_drift=params["covariate_drift"]
    )
    data_dir = conf.get("mlops", "data_dir", fallback="/tmp/airflow-mlops")
    uri = f"{data_dir}/drift_windows/{run_id.replace(':', '_').replace('+', '_')}.parquet"
    write_dataset(frame, uri)
    return {"uri": uri, "rows": len(frame)}


with DAG(
    dag_id="drift_monitor",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "drift", "evidently"],
    doc_md=DOC,
    params={
        "model_name": Param("churn", type="string", description="Registered model whose champion is the reference"),
        "current_uri": Param("", type="string", description="Current data URI (local or s3://); empty: demo data"),
        "rows": Param(5_000, type="integer", minimum=100, description="Rows of demo data when generating"),
        "seed": Param(1, type="integer", description="Seed of the demo data"),
        "covariate_drift": Param(0.0, type="number", minimum=0, maximum=1, description="Shift of the demo data"),
        "drift_share": Param(0.5, type="number", exclusiveMinimum=0, maximum=1,
                             description="Share of drifted columns at which the dataset drifts"),
    },
):  # fmt: skip
    DriftCheckOperator(
        task_id="check_drift",
        model_name="{{ params.model_name }}",
        current_uri=current_window()["uri"],
        drift_config={"drift_share": "{{ params.drift_share }}"},
        drift_asset=DRIFT,
    )
