"""Celery workers that import the tasks' libraries once, before they fork their pool.

An ``airflow celery worker`` runs each task in a process forked from one of its pool processes, which are
forked from the worker itself. Importing :data:`~airflow_mlops_provider.preload.TASK_IMPORTS` in the
worker, when Celery sends ``worker_init`` (before the pool starts), lets every task process inherit them
copy-on-write instead of importing mlflow, torch, pandas, Feast and GX again. Enable it with::

    [celery]
    celery_config_options = airflow_mlops_provider.preload_celery.CELERY_CONFIG

:data:`CELERY_CONFIG` is the celery provider's default configuration, unchanged: only the signal handler is
added. The scheduler imports this module too (it is the executor's configuration); there the signal never
fires. Needs the ``prod`` extra (the celery provider).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

from airflow_mlops_provider.preload import preload_task_modules

#: The celery provider's default Celery configuration (``[celery]`` options), for ``celery_config_options``.
CELERY_CONFIG: dict[str, Any] = DEFAULT_CELERY_CONFIG


@worker_init.connect
def preload_before_pool(**_: Any) -> None:
    """Preload the task libraries in the worker process, before its pool processes are forked.

    :param _: the signal's arguments (the worker), unused.
    """
    preload_task_modules()
