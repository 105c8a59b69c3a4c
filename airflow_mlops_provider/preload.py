"""Import the heavy libraries of the provider's tasks once, in the process that forks the task processes.

Airflow 3 runs every task in a process forked from an executor worker: the LocalExecutor's workers are
forked from the scheduler when the executor starts. A library imported before that fork is inherited,
copy-on-write, by every task process, instead of being imported again by each task (seconds per task for
mlflow, torch, pandas, Feast, Great Expectations and scipy). Enable it with::

    [core]
    executor = airflow_mlops_provider.preload.PreloadingLocalExecutor

It behaves like the ``LocalExecutor`` otherwise, except that it keeps a started task in ``running`` until
its last process has ended, so that a resumed deferred or human-in-the-loop task is not failed by the late
report of the process that paused (:mod:`airflow_mlops_provider.resumed_tasks`). The imports happen when
the scheduler starts the executor, never when a DAG is parsed; an extra that is not installed is skipped.
A Celery worker forks its pool the same way: call :func:`preload_task_modules` from its ``worker_init`` signal.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from airflow.executors.local_executor import LocalExecutor

from airflow_mlops_provider._optional import MissingExtraError, require_extra
from airflow_mlops_provider.resumed_tasks import ResumedTaskTracking

log = logging.getLogger(__name__)


def _feast() -> None:
    """Feast through the provider's own import path (its torch import stays lazy)."""
    from airflow_mlops_provider.core.features.feast_repo import import_feast

    import_feast()


def _kubernetes_backend() -> None:
    """The training pod's module (the Kubernetes clients), when ``[mlops] training_backend`` is kubernetes."""
    from airflow_mlops_provider.config import KUBERNETES, training_backend

    if training_backend() == KUBERNETES:
        importlib.import_module("airflow_mlops_provider.operators.training_pod")


def _great_expectations() -> None:
    """GX through the provider's own import path (its logger at WARNING)."""
    from airflow_mlops_provider.core.validation.suites import _import_gx

    _import_gx()


#: What the provider's tasks import when they run, by the extra that brings it (``None``: the base install):
#: modules, or a function for the libraries the provider imports in a particular way. The operator modules
#: come first: a task process parses its DAG file; the Kubernetes clients only for the kubernetes backend.
TASK_IMPORTS: dict[str | None, tuple[str | Callable[[], None], ...]] = {
    None: (
        "airflow_mlops_provider.operators.training",
        "airflow_mlops_provider.operators.registry",
        "airflow_mlops_provider.operators.features",
        "airflow_mlops_provider.operators.validation",
        "airflow_mlops_provider.operators.drift",
        "airflow_mlops_provider.operators.approval",
        "airflow_mlops_provider.operators.inference",
        "airflow_mlops_provider.operators.quality",
        "airflow_mlops_provider.operators.signals",
        "airflow_mlops_provider.sensors.features",
        _kubernetes_backend,
    ),
    "trainer": (
        "pandas",
        "pyarrow.parquet",
        "mlflow",
        "mlflow.pyfunc",
        "torch",
        "airflow_mlops_provider.core.models.evaluation",
        "airflow_mlops_provider.core.io.datasets",
    ),
    "feast": (
        _feast,
        "airflow_mlops_provider.core.features.point_in_time",
        "airflow_mlops_provider.core.features.offline_source",
    ),
    "gx": (_great_expectations,),
    "evidently": ("airflow_mlops_provider.core.drift.pipeline", "evidently", "evidently.presets"),
}


def preload_task_modules(
    imports: Mapping[str | None, Sequence[str | Callable[[], None]]] = TASK_IMPORTS,
) -> dict[str, float]:
    """Import what the tasks import, skipping the extras that are not installed; return seconds per extra
    (``base`` for the base install).

    :param imports: the modules (or import functions) by extra; by default :data:`TASK_IMPORTS`.
    """
    seconds: dict[str, float] = {}
    for extra, targets in imports.items():
        try:
            if extra is not None:
                require_extra(extra)
        except MissingExtraError as err:
            log.info("Not preloading the %r extra: %s", extra, err)
            continue
        started = time.perf_counter()
        for target in targets:
            if callable(target):
                target()
            else:
                importlib.import_module(target)
        seconds[extra or "base"] = time.perf_counter() - started
    log.info("Preloaded the task libraries in %s", ", ".join(f"{e} {s:.1f}s" for e, s in seconds.items()))
    return seconds


class PreloadingLocalExecutor(ResumedTaskTracking, LocalExecutor):
    """The ``LocalExecutor``, importing :data:`TASK_IMPORTS` before it forks its workers, and keeping a
    resumed deferred or human-in-the-loop task alive under load (:mod:`.resumed_tasks`).

    With a start method other than ``fork`` (the workers would not inherit the imports) it does not preload.
    """

    def start(self) -> None:
        """Preload the task libraries, then start the workers."""
        if self.is_mp_using_fork:
            preload_task_modules()
        super().start()
