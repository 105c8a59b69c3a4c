"""Where the churn feature views' offline data lives. No Feast import: the DAGs read it too.

``MLOPS_FEATURE_DATA_URI`` (a local directory or an ``s3://`` prefix), else ``data/offline`` beside this
file. Each feature view's parts are in ``<OFFLINE_DATA_URI>/<view name>/``.
"""

import os
from pathlib import Path

ENV_VAR = "MLOPS_FEATURE_DATA_URI"
OFFLINE_DATA_URI = (os.environ.get(ENV_VAR) or str(Path(__file__).parent / "data" / "offline")).rstrip("/")
