"""Deterministic crash points for the reliability tests: a no-op unless the environment arms one.

``AIRFLOW_MLOPS_FAILPOINT=<name>:<hit>`` kills the process with SIGKILL the ``hit``-th time (1-based)
:func:`failpoint` is reached with that name, counting across processes in the folder named by
``AIRFLOW_MLOPS_FAILPOINT_STATE``. A retry runs in a new process with the same environment; the count has
then passed ``hit``, so the retry goes through: exactly what a worker killed at that point and retried by
Airflow would see. Unset, :func:`failpoint` costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "AIRFLOW_MLOPS_FAILPOINT"
STATE_ENV = "AIRFLOW_MLOPS_FAILPOINT_STATE"


def failpoint(name: str) -> None:
    """Die here if the environment armed this point for this hit.

    :param name: the point's name, e.g. ``training.after_run_created``.
    """
    armed = os.environ.get(ENV)
    if not armed:
        return
    armed_name, _, hit = armed.rpartition(":")
    if armed_name != name:
        return
    state = Path(os.environ.get(STATE_ENV) or ".") / f"{name}.hits"
    hits = int(state.read_text()) + 1 if state.exists() else 1
    state.write_text(str(hits))
    if hits == int(hit):
        os.kill(os.getpid(), signal.SIGKILL)
