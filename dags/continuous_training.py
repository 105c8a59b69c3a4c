"""Continuous training: training set -> train (GPU pod or local) -> register -> champion/challenger gate."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from airflow_mlops_provider.operators.validation import DataValidationOperator

NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "usage_gb"]
CATEGORICAL = ["plan", "region"]
TARGET = "churned"
CHAMPION_MODEL = Asset(name="churn_model_champion", uri="mlflow://models/churn/champion", group="model")
DRIFT = Asset(name="churn_drift", uri="mlops://drift/churn", group="drift")

DOC = """
### Continuous training of the churn model

1. **training_set** takes the dataset at `dataset_uri`, or generates a seeded week of demo data when it is
   empty. The dataset needs a `split` column (`train` / `validation` / `holdout`).
2. **validate_training_set** checks it against `expectations/churn_training_set.json` (Great Expectations).
   A failed gate fails without retry and lists what failed: no training, registration or promotion. The
   task links to its Data Docs.
3. **train_model** runs the bundled PyTorch trainer: a GPU pod on Kubernetes, or a local process on the
   embedded stack (`[mlops] training_backend`). The run is tracked in MLflow.
4. **register_model** registers the run's model, idempotently, with lineage tags.
5. **promote_model** scores the new version and the current `champion` on the same holdout rows and moves
   the alias only when the policy passes; otherwise it tags the version `rejected` with the reason.

It runs weekly, and whenever the `churn_drift` asset is updated (by `drift_monitor` or `drift_watch`).
Trigger it by hand with the form: every knob is a typed Param.
"""


@task
def training_set() -> dict[str, Any]:
    """Resolve the training set: the given URI, or a freshly generated demo week."""
    from airflow.sdk import conf, get_current_context

    from airflow_mlops_provider.core import demo_data
    from airflow_mlops_provider.core.datasets import read_dataset, write_dataset

    context = get_current_context()
    params, run_id = context["params"], context["run_id"]
    if params["dataset_uri"]:
        uri = params["dataset_uri"]
        frame = read_dataset(uri)
    else:
        import pandas as pd

        start = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=7)
        frame = demo_data.assign_splits(demo_data.generate_batch(params["rows"], start, days=7, seed=params["seed"]))
        data_dir = conf.get("mlops", "data_dir", fallback="/tmp/airflow-mlops")
        uri = f"{data_dir}/training_sets/{run_id.replace(':', '_').replace('+', '_')}.parquet"
        write_dataset(frame, uri)
    if "split" not in frame.columns:
        raise ValueError(f"{uri} has no 'split' column (train/validation/holdout)")
    return {"uri": uri, "rows": len(frame)}


with DAG(
    dag_id="continuous_training",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 3 * * 0", timezone="UTC"), assets=DRIFT),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "continuous-training", "mlflow"],
    doc_md=DOC,
    params={
        "dataset_uri": Param("", type="string", description="Training set URI (local or s3://); empty: demo data"),
        "rows": Param(20_000, type="integer", minimum=1_000, description="Rows of demo data when generating"),
        "seed": Param(0, type="integer", description="Seed of the demo data"),
        "model_name": Param("churn", type="string", description="Registered model name"),
        "epochs": Param(8, type="integer", minimum=1, maximum=500, description="Training epochs"),
        "learning_rate": Param(0.003, type="number", exclusiveMinimum=0, description="Adam learning rate"),
        "batch_size": Param(256, type="integer", minimum=8, description="Mini-batch size"),
        "metric": Param("roc_auc", type="string", enum=["roc_auc", "accuracy", "log_loss"],
                        description="Holdout metric of the promotion gate"),
        "min_metric": Param(0.7, type="number", description="Absolute bar the challenger must meet"),
        "min_improvement": Param(0.0, type="number", minimum=0, description="Required gain over the champion"),
    },
):  # fmt: skip
    data = training_set()
    validate = DataValidationOperator(
        task_id="validate_training_set", dataset=data, suite_path="expectations/churn_training_set.json"
    )
    train = GPUTrainingOperator(
        task_id="train_model",
        dataset_uri=data["uri"],
        target=TARGET,
        numeric_features=NUMERIC,
        categorical_features=CATEGORICAL,
        experiment_name="{{ params.model_name }}",
        hyperparameters={
            "epochs": "{{ params.epochs }}",
            "learning_rate": "{{ params.learning_rate }}",
            "batch_size": "{{ params.batch_size }}",
            "seed": "{{ params.seed }}",
        },
        gpus=1,
    )
    validate >> train
    register = RegisterModelOperator(
        task_id="register_model", model_name="{{ params.model_name }}", run_id=train.output["run_id"]
    )
    PromoteModelOperator(
        task_id="promote_model",
        model_name="{{ params.model_name }}",
        version=register.output["version"],
        holdout_uri=data["uri"],
        target=TARGET,
        metric="{{ params.metric }}",
        min_value="{{ params.min_metric }}",
        min_improvement="{{ params.min_improvement }}",
        outlets=[CHAMPION_MODEL],
    )
