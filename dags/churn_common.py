"""What the churn example DAGs share: the model, its features, its Assets and where its data lives.

Not a DAG file (see ``.airflowignore``); the DAG files import it. Nothing heavy, no connection: it is
read at parse time.
"""

from __future__ import annotations

from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import (
    champion_asset,
    drift_asset,
    features_refreshed_asset,
    predictions_asset,
    quality_decay_asset,
)

# Re-exported: the feature repo names them; the DAGs use them.
from feature_repo.catalog import FEATURE_SERVICE as FEATURE_SERVICE
from feature_repo.catalog import FEATURE_VIEW as FEATURE_VIEW
from feature_repo.catalog import OFFLINE_DATA_URI
from feature_repo.catalog import TIME_COLUMN as TIME_COLUMN

MODEL_NAME = "churn"
#: The team that owns the example DAGs (their tasks' owner).
OWNER = "ml-platform"
#: What the DAGs' name Params (model, feature service) accept: MLflow and Feast names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
TARGET = "churned"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "usage_gb"]
CATEGORICAL = ["plan", "region"]

#: Updated when the model gets a new champion.
CHAMPION_MODEL = champion_asset(MODEL_NAME)
#: One event per drift episode (drift_monitor, or drift_watch): continuous_training runs on it.
DRIFT = drift_asset(MODEL_NAME)
#: One event per feature_ingestion run that ingested new batches: drift_monitor runs on it.
FEATURES_REFRESHED = features_refreshed_asset(MODEL_NAME)
#: One event per batch inference run that wrote predictions: model_quality runs on it.
PREDICTIONS = predictions_asset(MODEL_NAME)
#: One event per episode of decayed live quality (model_quality): continuous_training runs on it.
QUALITY_DECAY = quality_decay_asset(MODEL_NAME)

#: Raw batches arrive here; ingested ones move to INGESTED, the spine of training sets.
LANDING = data_path(DataFolder.LANDING, "")
INGESTED = data_path(DataFolder.INGESTED, "")
#: The offline data (parts) of the feature view, as the feature repo defines it.
FEATURE_VIEW_DATA = f"{OFFLINE_DATA_URI}/{FEATURE_VIEW}/"
