"""The vocabulary shared by the trainer, the operators, the DAGs, the demo and the tests.

Everything one part writes and another reads is named here, once: MLflow tag keys and run params,
registry aliases, the results tasks return (their keys are the XCom keys of ``task.output[...]``) and
the Assets of a model. This module imports nothing heavy and nothing of Airflow at import time, so the
trainer image, which has no Airflow, reads it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypedDict

if TYPE_CHECKING:
    from airflow.sdk import Asset, AssetWatcher

# --- Registry aliases -------------------------------------------------------------------------------
#: The version in production; promotion moves it, drift checks and the apply guard follow it.
CHAMPION: Final = "champion"
#: The champion before the last promotion; rollback restores it.
PREVIOUS_CHAMPION: Final = "previous_champion"

# --- Promotion outcomes -----------------------------------------------------------------------------
PROMOTED: Final = "promoted"
REJECTED: Final = "rejected"
#: A promotion the policy passed, waiting for a person's approval before the aliases move.
PENDING_APPROVAL: Final = "pending_approval"
#: The registered model ``<model><suffix>`` whose versions are the tickets of the model's promotion lease.
PROMOTION_LEASE_SUFFIX: Final = ".promotion-lease"


class Tag:
    """MLflow tag keys: on training runs (written by the trainer and the training operator) and on model
    versions (written by registration and promotion)."""

    #: The training set's URI and its content digest (``core.io.datasets.dataset_digest``).
    DATASET_URI: Final = "mlops.dataset_uri"
    DATASET_DIGEST: Final = "mlops.dataset_digest"
    #: The split policy the trainer applied (``SplitPolicy.to_json()``), and the ``dataset_digest`` of the
    #: holdout rows it produced: promotion scores only on rows with this digest.
    SPLIT_POLICY: Final = "mlops.split_policy"
    HOLDOUT_DIGEST: Final = "mlops.holdout_digest"
    #: The logged model's URI; a run without it has not finished training.
    MODEL_URI: Final = "mlops.model_uri"
    #: The Feast feature service and the ``[start, end)`` window the training set came from.
    FEATURE_SERVICE: Final = "mlops.feature_service"
    DATA_WINDOW: Final = "mlops.data_window"
    #: The Airflow task instance that trained (the MLflow run has an id of its own).
    AIRFLOW_DAG_ID: Final = "mlops.airflow_dag_id"
    AIRFLOW_RUN_ID: Final = "mlops.airflow_run_id"
    AIRFLOW_TASK_ID: Final = "mlops.airflow_task_id"
    AIRFLOW_TRY_NUMBER: Final = "mlops.airflow_try_number"
    #: Where the trainer ran: ``local`` or ``kubernetes``, and its image.
    TRAINER_BACKEND: Final = "mlops.trainer_backend"
    TRAINER_IMAGE: Final = "mlops.trainer_image"
    #: ``<dag_id>/<run_id>/<task_id>`` of the task that registered the version.
    REGISTERED_BY: Final = "mlops.registered_by"
    #: The promotion record (JSON) and its parts, on the challenger version.
    PROMOTION: Final = "mlops.promotion"
    PROMOTION_DECISION: Final = "mlops.promotion.decision"
    PROMOTION_REASON: Final = "mlops.promotion.reason"
    PROMOTION_CHALLENGER_SCORE: Final = "mlops.promotion.challenger_score"
    PROMOTION_CHAMPION_SCORE: Final = "mlops.promotion.champion_score"
    PROMOTION_CHAMPION_VERSION: Final = "mlops.promotion.champion_version"
    #: The reason a challenger was rejected (a short key, easy to filter on in the MLflow UI).
    REJECTED: Final = REJECTED
    #: Why a champion was rolled back, on the demoted version.
    ROLLED_BACK: Final = "mlops.rolled_back"
    #: Who approved or rejected a pending promotion (``require_approval``), and the reason they gave.
    REVIEWED_BY: Final = "mlops.promotion.reviewed_by"
    REVIEW_REASON: Final = "mlops.promotion.review_reason"
    #: Prefix of the registered model's champion history tags: ``mlops.history.000001`` = an entry's JSON.
    HISTORY_PREFIX: Final = "mlops.history."
    #: On a ticket of a promotion lease (``core.models.lease``): who holds or waits, which try, and until
    #: when (epoch seconds) the ticket is valid.
    LEASE_HOLDER: Final = "mlops.lease.holder"
    LEASE_TRY: Final = "mlops.lease.try"
    LEASE_EXPIRES_AT: Final = "mlops.lease.expires_at"

    #: Run tags copied onto the model version at registration: its lineage.
    LINEAGE: Final = (
        DATASET_URI,
        DATASET_DIGEST,
        SPLIT_POLICY,
        HOLDOUT_DIGEST,
        FEATURE_SERVICE,
        DATA_WINDOW,
        AIRFLOW_DAG_ID,
        AIRFLOW_RUN_ID,
        TRAINER_BACKEND,
        TRAINER_IMAGE,
    )
    #: The tags of the promotion decision, as the demo and the README show them.
    PROMOTION_TAGS: Final = (
        PROMOTION_DECISION,
        PROMOTION_REASON,
        PROMOTION_CHALLENGER_SCORE,
        PROMOTION_CHAMPION_SCORE,
        PROMOTION_CHAMPION_VERSION,
    )


class RunParam:
    """MLflow run params the trainer logs (``TrainConfig`` field names) and the drift check reads back."""

    TARGET: Final = "target"
    NUMERIC_FEATURES: Final = "numeric_features"
    CATEGORICAL_FEATURES: Final = "categorical_features"
    SPLIT_COLUMN: Final = "split_column"
    #: The split policy as JSON (``core.io.splits.SplitPolicy``); promotion and drift apply it again.
    SPLIT_POLICY: Final = "split_policy"
    PROBLEM_TYPE: Final = "problem_type"


class ProblemType:
    """What a model predicts: the values of :attr:`RunParam.PROBLEM_TYPE`."""

    #: A 0/1 label; the model predicts P(1).
    BINARY: Final = "binary"
    #: A numeric target; the model predicts its value.
    REGRESSION: Final = "regression"


#: Every problem type, as the trainer's ``--help`` lists them.
PROBLEM_TYPES: Final = (ProblemType.REGRESSION, ProblemType.BINARY)


class Split:
    """The values of a dataset's split column."""

    COLUMN: Final = "split"
    TRAIN: Final = "train"
    VALIDATION: Final = "validation"
    HOLDOUT: Final = "holdout"
    #: In time order: the oldest rows train, the newest are held out.
    ALL: Final = (TRAIN, VALIDATION, HOLDOUT)


# --- Task results: what each operator returns; every key is also its own XCom (``task.output[key]``) --


class TrainingResult(TypedDict):
    """``GPUTrainingOperator``: the MLflow run that trained, and what it produced."""

    mlflow_run_id: str
    experiment_id: str
    model_uri: str
    metrics: dict[str, float]
    dataset_uri: str | None
    dataset_digest: str | None


class RegistrationResult(TypedDict):
    """``RegisterModelOperator``: the version made from a run (``created`` is false on reuse)."""

    model_name: str
    version: str
    mlflow_run_id: str
    model_uri: str
    created: bool


class PromotionRecord(TypedDict, total=False):
    """``PromoteModelOperator``: the decision (also the ``mlops.promotion`` tag of the version)."""

    promote: bool
    reason: str
    metric: str
    challenger_score: float
    champion_score: float | None
    policy: dict[str, Any]
    model_name: str
    version: str
    champion_version: str | None
    holdout_uri: str
    holdout_digest: str
    holdout_rows: int
    #: With ``require_approval``: the policy passed and the aliases wait for a person (then who and why).
    awaiting_approval: bool
    reviewed_by: str
    review_reason: str


#: The keys of a :class:`PromotionRecord` that only a decision under ``require_approval`` has.
APPROVAL_KEYS: Final = ("awaiting_approval", "reviewed_by", "review_reason")


class RollbackResult(TypedDict):
    """``RollbackModelOperator``: the restored champion and the demoted version."""

    model_name: str
    champion: str
    demoted: str | None


class FeastApplyResult(TypedDict):
    """``FeastApplyOperator``: what was applied, and the feature service the guard protected."""

    project: str
    feature_views: list[str]
    feature_services: list[str]
    protected_service: str | None


class IngestionResult(TypedDict):
    """``FeatureIngestionOperator``: one batch in the offline store, and the materialized range."""

    feature_view: str
    batch_id: str
    batch_uri: str
    part_uri: str
    rows: int
    start: str
    end: str


class BatchIngestedEvent(TypedDict):
    """The extra of a :func:`feature_view_asset` event: one ingested batch."""

    batch_id: str
    rows: int


class BatchesIngestedResult(TypedDict):
    """``FeatureIngestionOperator`` given several batches: each ingested batch, and the ones it refused."""

    feature_view: str
    batches: list[IngestionResult]
    refused: dict[str, str]
    rows: int


class BatchesIngestedEvent(TypedDict):
    """The extra of a :func:`feature_view_asset` event of a task that ingested several batches."""

    batches: list[BatchIngestedEvent]
    rows: int


class FeaturesRefreshedEvent(TypedDict):
    """The extra of a :func:`features_refreshed_asset` event: the batches one ingestion run added."""

    batches: list[str]
    rows: int


class ArchiveResult(TypedDict):
    """``ArchiveBatchesOperator``: the batches moved out of the landing zone."""

    batches: list[str]
    rows: int
    archived: list[str]
    quarantined: int


class TrainingSetResult(TypedDict):
    """``TrainingDatasetOperator``: the written set (``digest`` equals the trainer's dataset digest)."""

    uri: str
    digest: str
    rows: int
    dropped: int
    missing: int
    filled: int
    window: str
    feature_service: str


class FreshnessResult(TypedDict):
    """``FeatureFreshnessSensor``: the newest data of the view and the time it had to reach."""

    feature_view: str
    latest: str
    target: str


class ValidationRecord(TypedDict, total=False):
    """``DataValidationOperator``: the compact GX result, in every outcome (pass, warn, fail, quarantine)."""

    success: bool
    suite_name: str
    row_count: int
    statistics: dict[str, Any]
    failures: list[dict[str, Any]]
    message: str
    dataset_uri: str
    docs_uri: str
    docs_url: str


class BatchesValidation(TypedDict):
    """``DataValidationOperator`` given several datasets: those that passed, those quarantined, every record."""

    passed: list[str]
    quarantined: list[str]
    records: list[ValidationRecord]


class DriftVerdicts(TypedDict):
    """The verdicts of one drift comparison (``DriftResult.to_dict()``): the dataset's, and each column's."""

    dataset_drift: bool
    share: float
    drift_share: float
    drifted_columns: list[str]
    reference_rows: int
    current_rows: int
    columns: list[dict[str, Any]]


class DriftSummary(DriftVerdicts, total=False):
    """``DriftCheckOperator``, ``DriftSensor`` and ``DriftTrigger`` events: what was compared and the verdicts."""

    model_name: str | None
    model_version: str | None
    reference_uri: str
    reference_digest: str | None
    current_uri: str
    window_id: str
    report_uri: str
    episode: str
    columns_tested: int  # all columns compared; ``columns`` and ``drifted_columns`` list at most 100
    prediction_drift: dict[str, Any]  # with ``predictions_uri``: the verdict on the champion's predictions


class PredictionColumn:
    """Columns of a predictions file (``BatchInferenceOperator``), beside the entity keys and event time."""

    PREDICTION: Final = "prediction"
    #: The registry version that scored the row (the champion's at run time, resolved once per run).
    MODEL_VERSION: Final = "model_version"
    #: When the run scored (ISO 8601, UTC).
    SCORED_AT: Final = "scored_at"


class Unscorable:
    """What batch inference does with rows it cannot score (an unknown entity, missing features)."""

    #: Leave them out, counted, failing the task when more than the allowed fraction is dropped.
    DROP: Final = "drop"
    #: Score them with the given fill values.
    FILL: Final = "fill"
    #: Fail the task, naming some of them, before anything is written.
    FAIL: Final = "fail"
    ALL: Final = (DROP, FILL, FAIL)


class InferenceResult(TypedDict):
    """``BatchInferenceOperator``: the written predictions and the version that made them."""

    model_name: str
    version: str
    predictions_uri: str
    rows: int
    scored: int
    unscorable: int
    unscorable_policy: str
    statistics: dict[str, float]
    scored_at: str


class QualityResult(TypedDict, total=False):
    """``ModelQualityOperator``: the live metric of the scored windows, and whether it decayed."""

    model_name: str
    version: str
    metric: str
    windows: list[dict[str, Any]]
    series_uri: str
    decayed: bool
    fire: bool
    reason: str
    episode: str
    value: float | None  # the champion's metric in the judged ``window`` (its start), against ``floor``
    floor: float | None
    window: str | None
    holdout_score: float | None


#: What a quality decay Asset event carries in its extra.
QUALITY_EVENT_KEYS: Final = ("model_name", "version", "metric", "value", "floor", "window")


#: What a drift Asset event carries in its extra.
DRIFT_EVENT_KEYS: Final = ("model_name", "model_version", "drifted_columns", "share", "report_uri")


def drift_event_extra(summary: DriftSummary | dict[str, Any]) -> dict[str, Any]:
    """The extra of a drift Asset event: the :data:`DRIFT_EVENT_KEYS` of a check's summary.

    :param summary: what the check returned (or the event that forwarded it carried).
    """
    return {key: summary.get(key) for key in DRIFT_EVENT_KEYS}


# --- Assets -----------------------------------------------------------------------------------------


def champion_asset(model_name: str) -> Asset:
    """Updated when ``model_name`` gets a new champion; batch inference is scheduled on it.

    :param model_name: the registered model.
    """
    from airflow.sdk import Asset

    return Asset(name=f"{model_name}_model_champion", uri=f"mlflow://models/{model_name}/{CHAMPION}", group="model")


def drift_asset(model_name: str) -> Asset:
    """Receives an event, with :data:`DRIFT_EVENT_KEYS`, once per drift episode of ``model_name``'s inputs.

    :param model_name: the registered model.
    """
    from airflow.sdk import Asset

    return Asset(name=f"{model_name}_drift", uri=f"mlops://drift/{model_name}", group="drift")


def drift_watch_asset(model_name: str, watchers: list[AssetWatcher]) -> Asset:
    """The event-driven form of :func:`drift_asset`: its events come from ``watchers`` in the triggerer.

    :param model_name: the registered model.
    :param watchers: e.g. one ``AssetWatcher`` running a ``DriftTrigger``.
    """
    from airflow.sdk import Asset

    return Asset(
        name=f"{model_name}_drift_watch", uri=f"mlops://drift/{model_name}/watch", group="drift", watchers=watchers
    )


def features_refreshed_asset(name: str) -> Asset:
    """One event per ingestion run that added data (batches, rows), for checks that follow new data.

    :param name: what the features are for, e.g. the model's name.
    """
    from airflow.sdk import Asset

    return Asset(name=f"{name}_features_refreshed", uri=f"mlops://features/{name}/refreshed", group="feature")


def feature_view_asset(feature_view: str) -> Asset:
    """A feature view's data; ingestion emits an event on it per batch.

    :param feature_view: the feature view's name.
    """
    from airflow.sdk import Asset

    return Asset(name=f"feature_view.{feature_view}", uri=f"feast://feature_views/{feature_view}", group="feature")


def predictions_asset(model_name: str) -> Asset:
    """Updated by each batch inference run of ``model_name`` that wrote predictions.

    :param model_name: the registered model.
    """
    from airflow.sdk import Asset

    return Asset(name=f"{model_name}_predictions", uri=f"mlops://predictions/{model_name}", group="model")


def quality_decay_asset(model_name: str) -> Asset:
    """Receives an event once per episode in which ``model_name``'s live quality falls below its policy.

    :param model_name: the registered model.
    """
    from airflow.sdk import Asset

    return Asset(name=f"{model_name}_quality_decay", uri=f"mlops://quality/{model_name}/decay", group="model")
