"""The names this feature repo defines, and where its offline data lives. No Feast import: the DAGs read
it too (through ``dags/churn_common.py``).

The offline data is under ``MLOPS_FEATURE_DATA_URI`` (a local directory or an ``s3://`` prefix), else
``data/offline`` beside this file; each feature view's parts are in ``<OFFLINE_DATA_URI>/<view name>/``.
"""

import os
from pathlib import Path

ENV_VAR = "MLOPS_FEATURE_DATA_URI"
OFFLINE_DATA_URI = (os.environ.get(ENV_VAR) or str(Path(__file__).parent / "data" / "offline")).rstrip("/")

ENTITY_KEY = "customer_id"
TIME_COLUMN = "event_timestamp"
FEATURE_VIEW = "customer_stats"
FEATURE_SERVICE = "churn_v1"
