"""``python -m airflow_mlops_provider.core.drift``: one drift check, its spec on stdin and its reply on stdout.

See :mod:`airflow_mlops_provider.core.drift.worker`.
"""

from __future__ import annotations

import sys

from airflow_mlops_provider.core.drift.worker import main

if __name__ == "__main__":
    sys.exit(main())
