"""Continuous training: Feast training set -> GX gate -> train (GPU pod or local) -> register -> promote
(-> a person's approval -> apply, with `require_approval`)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from airflow_mlops_provider.contracts import ProblemType, Tag
from airflow_mlops_provider.operators.approval import ApplyPromotionOperator, PromotionApprovalOperator
from airflow_mlops_provider.operators.features import TrainingDatasetOperator
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from airflow_mlops_provider.operators.validation import DataValidationOperator
from airflow_mlops_provider.run_windows import days_before_run

from churn_common import (
    CATEGORICAL,
    CHAMPION_MODEL,
    DRIFT,
    FEATURE_SERVICE,
    INGESTED,
    MODEL_NAME,
    NAME_PATTERN,
    NUMERIC,
    OWNER,
    QUALITY_DECAY,
    TARGET,
)

#: The training window: the `window_days` days before the run (its trigger time, for a drift-triggered run).
WINDOW_START, WINDOW_END = days_before_run("params.window_days")

DOC = f"""
### Continuous training of the {MODEL_NAME} model

1. **training_set** builds a point-in-time-correct training set from the Feast feature service
   `feature_service`: the spine is the ingested raw batches (`[mlops] data_dir`/ingested/: customer,
   timestamp, label) of the last `window_days` days, each row joined with the features as of its time.
   Rows without features are dropped (at most 5%, else the task fails), and a temporal `split` column
   (train / validation / holdout) is added. The set's URI, digest, window and feature service go to XCom.
2. **validate_training_set** checks it against `expectations/churn_training_set.json` (Great Expectations).
   A failed gate fails without retry and lists what failed: no training, registration or promotion. The
   task links to its Data Docs.
3. **train_model** runs the bundled PyTorch trainer: a GPU pod on Kubernetes, or a local process on the
   embedded stack (`[mlops] training_backend`). The run is tracked in MLflow, with the training set's
   digest as its dataset input and the feature service and window as tags.
4. **register_model** registers the run's model, idempotently, with lineage tags (dataset URI and digest,
   feature service, window).
5. **promote_model** scores the new version and the current `champion` on the same holdout rows and moves
   the alias only when the policy passes; otherwise it tags the version `rejected` with the reason. Runs
   may overlap: promotions of the model take its promotion lease, so each decides against the champion
   of its moment, one at a time. Only a new champion updates the `{CHAMPION_MODEL.name}` asset.
6. With `require_approval` on, a passing decision is recorded as `pending_approval` and the aliases wait:
   **approve_promotion** asks a person (Airflow's human-in-the-loop: the UI's *Required Actions* page, or the
   REST API) with both scores, the policy, the lineage and MLflow links, and a reason field;
   **apply_promotion** then moves the aliases on *Approve* or tags the version `rejected` with the person's
   reason on *Reject*. Both are skipped when nothing awaits approval. Unanswered for 3 days, the request
   times out and nothing changes. Every alias move is kept in the model's champion history
   (`airflow-mlops history {MODEL_NAME}`).

It runs weekly, whenever the `{DRIFT.name}` asset is updated (by `drift_monitor` or `drift_watch`), and
whenever the `{QUALITY_DECAY.name}` asset is (the live quality of the champion decayed).
Trigger it by hand with the form: every knob is a typed Param.
"""


with DAG(
    dag_id="continuous_training",
    schedule=AssetOrTimeSchedule(
        # run_immediately=0: the first deployment does not start a training for the Sunday just past.
        timetable=CronTriggerTimetable("0 3 * * 0", timezone="UTC", run_immediately=timedelta(0)),
        assets=DRIFT | QUALITY_DECAY,
    ),
    catchup=False,
    # Runs may overlap (a drift-triggered run while another trains, or several by hand with other
    # hyperparameters): their promotions queue on the model's promotion lease, one decision at a time.
    max_active_runs=16,
    tags=["mlops", "continuous-training", "mlflow"],
    doc_md=DOC,
    default_args={"owner": OWNER},
    params={
        "feature_service": Param(FEATURE_SERVICE, type="string", minLength=1, maxLength=128, pattern=NAME_PATTERN,
                                 description="Feast feature service to train on"),
        "window_days": Param(28, type="integer", minimum=1, maximum=365,
                             description="Days of data before the run to train on"),
        "seed": Param(0, type="integer", minimum=0, maximum=2**31 - 1,
                      description="Seed of the model's initialization and shuffling"),
        "model_name": Param(MODEL_NAME, type="string", minLength=1, maxLength=128, pattern=NAME_PATTERN,
                            description="Registered model name (also the MLflow experiment)"),
        "epochs": Param(8, type="integer", minimum=1, maximum=500, description="Training epochs"),
        "learning_rate": Param(0.003, type="number", exclusiveMinimum=0, maximum=1, description="Adam learning rate"),
        "batch_size": Param(256, type="integer", minimum=8, maximum=8192, description="Mini-batch size"),
        "metric": Param("roc_auc", type="string", enum=["roc_auc", "accuracy", "log_loss"],
                        description="Holdout metric of the promotion gate"),
        "min_metric": Param(0.7, type="number", minimum=0, maximum=1,
                            description="Bar the challenger must meet: at least this, or at most for log_loss"),
        "min_improvement": Param(0.0, type="number", minimum=0, maximum=1,
                                 description="Required gain over the champion's holdout metric"),
        "require_approval": Param(False, type="boolean",
                                  description="A passing challenger waits for a person's approval before it becomes "
                                  "champion"),
    },
):  # fmt: skip
    data = TrainingDatasetOperator(
        task_id="training_set",
        feature_service="{{ params.feature_service }}",
        spine_uri=INGESTED,
        label_columns=[TARGET],
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        missing_features="drop",
        max_missing_fraction=0.05,
        doc_md="Point-in-time training set of `feature_service` over the last `window_days` days; returns its URI, "
        "digest, window and row counts.",
    )
    validate = DataValidationOperator(
        task_id="validate_training_set",
        dataset=data.output["uri"],
        suite_path="expectations/churn_training_set.json",
        doc_md="Great Expectations gate on the training set: a failure stops the run before training. Links its "
        "Data Docs.",
    )
    train = GPUTrainingOperator(
        task_id="train_model",
        dataset_uri=data.output["uri"],
        target=TARGET,
        numeric_features=NUMERIC,
        categorical_features=CATEGORICAL,
        problem_type=ProblemType.BINARY,
        experiment_name="{{ params.model_name }}",
        hyperparameters={
            "epochs": "{{ params.epochs }}",
            "learning_rate": "{{ params.learning_rate }}",
            "batch_size": "{{ params.batch_size }}",
            "seed": "{{ params.seed }}",
        },
        run_tags={Tag.FEATURE_SERVICE: data.output["feature_service"], Tag.DATA_WINDOW: data.output["window"]},
        gpus=1,
        doc_md="Trains the model (a GPU pod, or a local process) in an MLflow run, linked as **MLflow run**; returns "
        "the run id, model URI and metrics.",
    )
    validate >> train
    register = RegisterModelOperator(
        task_id="register_model",
        model_name="{{ params.model_name }}",
        mlflow_run_id=train.output["mlflow_run_id"],
        doc_md="Registers the run's model once, with lineage tags; links the **MLflow model version**.",
    )
    promote = PromoteModelOperator(
        task_id="promote_model",
        model_name="{{ params.model_name }}",
        version=register.output["version"],
        holdout_uri=data.output["uri"],
        target=TARGET,
        problem_type=ProblemType.BINARY,
        metric="{{ params.metric }}",
        min_value="{{ params.min_metric }}",
        min_improvement="{{ params.min_improvement }}",
        require_approval="{{ params.require_approval }}",
        champion_asset=CHAMPION_MODEL,
        doc_md="Scores the new version and the `champion` on the same holdout rows; moves the alias when `metric` "
        "passes `min_metric` and `min_improvement` (or, with `require_approval`, records it as pending), else "
        "tags the version `rejected` with the reason.",
    )
    approve = PromotionApprovalOperator(
        task_id="approve_promotion",
        model_name="{{ params.model_name }}",
        version=register.output["version"],
        response_timeout=timedelta(days=3),
        doc_md="Asks a person to approve the pending promotion (Required Actions); skipped when none is pending.",
    )
    promote >> approve
    ApplyPromotionOperator(
        task_id="apply_promotion",
        model_name="{{ params.model_name }}",
        version=register.output["version"],
        review=approve.output,
        champion_asset=CHAMPION_MODEL,
        doc_md="Applies the answer under the promotion lease: moves the aliases on Approve, tags the version "
        "`rejected` with the reason on Reject.",
    )
