"""The demo (``make demo``): its story, the stack of each profile (embedded, prod) and its data generator.

Not installed with the provider. It tells the story of the example DAGs, so it reads their shared module
(``dags/churn_common.py``) the way Airflow does: with the DAGs folder on ``sys.path``.
"""

import sys
from pathlib import Path

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
if str(DAGS_FOLDER) not in sys.path:
    sys.path.append(str(DAGS_FOLDER))
