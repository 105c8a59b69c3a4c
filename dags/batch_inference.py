"""Batch inference: score the recently ingested customers with the champion, from the Feast online store."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_mlops_provider.contracts import CHAMPION, PredictionColumn, Unscorable
from airflow_mlops_provider.operators.inference import BatchInferenceOperator
from airflow_mlops_provider.run_windows import days_before_run

from churn_common import (
    CHAMPION_MODEL,
    FEATURE_SERVICE,
    FEATURES_REFRESHED,
    INGESTED,
    MODEL_NAME,
    NAME_PATTERN,
    OWNER,
    PREDICTIONS,
    TIME_COLUMN,
)

#: The entities to score: the ingested batches' rows of the `window_hours` hours before the run.
WINDOW_START, WINDOW_END = days_before_run("params.window_hours / 24")

DOC = f"""
### Batch inference with the {MODEL_NAME} champion

Runs whenever the model gets a new `{CHAMPION}` (the `{CHAMPION_MODEL.name}` asset) or `feature_ingestion`
has ingested new batches (the `{FEATURES_REFRESHED.name}` asset).

**score_customers** resolves the version the `{CHAMPION}` alias of `model_name` points at, once, and loads
exactly that version: a promotion during the run cannot mix two models, and the next run uses the new
champion without any restart. The customers to score are the rows of the ingested batches
(`[mlops] data_dir`/ingested/: `customer_id`, `{TIME_COLUMN}`; their label is ignored) of the last
`window_hours` hours; their features are the latest values of the Feast feature service `{FEATURE_SERVICE}`
in the online store. Rows are read, looked up and scored `chunk_rows` at a time.

The predictions (`customer_id`, `{TIME_COLUMN}`, `{PredictionColumn.PREDICTION}`,
`{PredictionColumn.MODEL_VERSION}`, `{PredictionColumn.SCORED_AT}`) go to one parquet file per run,
`[mlops] data_dir`/predictions/{MODEL_NAME}/<run id>.parquet, written only once every row is scored (a retry
overwrites it). A customer the online store does not know, or a missing feature value, is unscorable: left
out, counted and logged, and the task fails when more than `max_unscorable_fraction` of the rows are. Each
run that wrote predictions emits a `{PREDICTIONS.name}` event (model, version, rows, file). The task is
skipped when no batch was ingested in the window, or while the model has no champion yet.
"""

with DAG(
    dag_id="batch_inference",
    schedule=CHAMPION_MODEL | FEATURES_REFRESHED,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "inference", "feast", "mlflow"],
    doc_md=DOC,
    default_args={"owner": OWNER},
    params={
        "model_name": Param(MODEL_NAME, type="string", minLength=1, maxLength=128, pattern=NAME_PATTERN,
                            description="Registered model whose champion scores"),
        # 10 days: the span of the demo's recent batches; a daily scoring job would use 24.
        "window_hours": Param(240, type="integer", minimum=1, maximum=24 * 365,
                              description="Hours of ingested rows before the run to score"),
    },
):  # fmt: skip
    BatchInferenceOperator(
        task_id="score_customers",
        model_name="{{ params.model_name }}",
        entities_uri=INGESTED,
        feature_service=FEATURE_SERVICE,
        timestamp_column=TIME_COLUMN,
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        unscorable=Unscorable.DROP,
        max_unscorable_fraction=0.05,
        skip_without_version=True,
        outlets=[PREDICTIONS],
        doc_md="Scores the window's customers with the champion (linked as **MLflow model version**), features from "
        "the online store; writes one predictions file and emits the predictions Asset. Skipped without rows or "
        "champion.",
    )
