"""Model quality: after each batch inference run (and daily), the champion's live metric from delayed labels."""

from __future__ import annotations

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import CHAMPION, Tag
from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.operators.quality import ModelQualityOperator

from churn_common import INGESTED, MODEL_NAME, NAME_PATTERN, OWNER, PREDICTIONS, QUALITY_DECAY, TARGET, TIME_COLUMN

DOC = f"""
### Live quality of the {MODEL_NAME} model

Runs whenever batch inference has written predictions (the `{PREDICTIONS.name}` asset), and daily, as
labels keep arriving.

**check_quality** joins the predictions under `{data_path(DataFolder.PREDICTIONS, MODEL_NAME, "")}` with
the `{TARGET}` labels of the ingested batches (`{INGESTED}`) on `customer_id` and `{TIME_COLUMN}`. Per day of
event time and model version it computes the live `metric`, the predictions, the labels joined and the
label coverage; a day is recomputed while its labels arrive. The series is stored in
`{data_path(DataFolder.QUALITY, MODEL_NAME, "series.parquet")}` and charted in MLflow (`live_<metric>`,
`live_label_coverage` on each version's run). The newest day of the `{CHAMPION}` with at least `min_labels`
labels is judged: below `min_value`, or more than `max_drop` under the version's holdout score recorded at
promotion (`{Tag.PROMOTION}`), the model has decayed, and an event of `{QUALITY_DECAY.name}` is emitted,
once per decay episode (at most every 3 days), on which `continuous_training` retrains.
"""

with DAG(
    dag_id="model_quality",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 7 * * *", timezone="UTC"), assets=PREDICTIONS),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "quality", "mlflow"],
    doc_md=DOC,
    default_args={"owner": OWNER},
    params={
        "model_name": Param(MODEL_NAME, type="string", minLength=1, maxLength=128, pattern=NAME_PATTERN,
                            description="Registered model whose champion is judged"),
        "metric": Param("roc_auc", type="string", enum=["roc_auc", "accuracy", "log_loss"],
                        description="Live metric"),
        "min_value": Param(0.6, type="number", minimum=0, maximum=1,
                           description="Floor of the live metric (a ceiling for log_loss)"),
        "max_drop": Param(0.15, type="number", minimum=0, maximum=1,
                          description="Allowed drop below the champion's holdout score, in metric units"),
        "min_labels": Param(30, type="integer", minimum=1, maximum=1_000_000,
                            description="Labels a day needs for a verdict"),
        "lookback_days": Param(30, type="integer", minimum=1, maximum=365,
                               description="Days of predictions recomputed each run"),
    },
):  # fmt: skip
    ModelQualityOperator(
        task_id="check_quality",
        model_name="{{ params.model_name }}",
        entity_columns=["customer_id"],
        labels_uri=INGESTED,
        label_column=TARGET,
        time_column=TIME_COLUMN,
        window="1D",
        lookback="{{ params.lookback_days }}D",
        metric="{{ params.metric }}",
        min_value="{{ params.min_value }}",
        max_drop="{{ params.max_drop }}",
        min_labels="{{ params.min_labels }}",
        decay_asset=QUALITY_DECAY,
        # A retrained champion's first days still carry the decayed days' labels: one retraining per 3 days.
        episode_policy=EpisodePolicy(cooldown_seconds=3 * 86_400),
        doc_md="Recomputes the live metric per day from the labels that arrived, stores the series, charts it in "
        "MLflow, and emits the quality decay Asset once per decay episode of the champion.",
    )
