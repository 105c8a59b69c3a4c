from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures.s3_server",
    "tests.fixtures.mlflow_server",
    "tests.fixtures.task_context",
    "tests.fixtures.feast_repo",
    "tests.fixtures.live_prod",
    "tests.fixtures.task_server",
]


@contextlib.contextmanager
def _process_state_restored() -> Iterator[None]:
    """Undo the process-wide state a task sets, as it rightly does in its own task process
    (``MlflowHook.get_conn`` sets MLflow's tracking and registry URIs and the environment)."""
    environ = dict(os.environ)
    yield
    if "mlflow" in sys.modules:
        mlflow = sys.modules["mlflow"]
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(autouse=True, scope="module")
def _module_state_stays_with_its_module() -> Iterator[None]:
    """What a module's fixtures set up by running tasks does not reach the next module, whose servers are others."""
    with _process_state_restored():
        yield


@pytest.fixture(autouse=True)
def _process_state_stays_with_its_test() -> Iterator[None]:
    """What a test's tasks set does not reach the next test."""
    with _process_state_restored():
        yield
