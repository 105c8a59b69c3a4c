"""The live prod-profile demo, shared by the e2e modules that inspect it (one story run for all of them).

The package starts it once, after its story, with its servers up; at the end it is stopped, and the
teardown checks that no process, port, database or Redis key of it is left.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops_provider.core.io.storage import ObjectStore, StorageConfig
from demo.api import AirflowApi
from demo.services import Services
from tests.e2e.story import LiveDemo, listening, survivors


@pytest.fixture(scope="package")
def services() -> Services:
    """The machine's PostgreSQL and Redis; fails under ``CI=true`` when one is missing, else skips."""
    found = Services.from_env()
    missing = found.missing()
    if missing:
        message = "the prod-profile e2e needs PostgreSQL and Redis:\n  " + "\n  ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="package")
def live(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveDemo, Path]]:
    """The prod demo after its story, servers up; stopped afterwards, checking that nothing of it is left."""
    home = tmp_path_factory.mktemp("prod") / "demo"
    demo = LiveDemo(home, DEMO_PROFILE="prod")
    try:
        demo.wait_completed()
    except BaseException:  # a failed story, or pytest's timeout: stop what it started all the same
        demo.stop()
        raise
    yield demo, home
    stack = json.loads((home / "stack.json").read_text())
    assert demo.stop() == 0, demo.output[-5000:]
    assert survivors(stack["sessions"], home) == []
    assert [port for port in stack["ports"] if listening(port)] == []
    with contextlib.closing(services.connect_postgres()) as conn, conn.cursor() as cur:
        names = list(stack["postgres"]["databases"].values())
        cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
        assert cur.fetchall() == []
    assert [db for db in stack["redis"]["databases"].values() if services.redis_client(db).dbsize()] == []


@pytest.fixture(scope="package")
def stack(live: tuple[LiveDemo, Path]) -> dict[str, Any]:
    """``stack.json`` of the running demo."""
    return dict(json.loads((live[1] / "stack.json").read_text()))


@pytest.fixture(scope="package")
def store(stack: dict[str, Any]) -> ObjectStore:
    """The run's S3."""
    return ObjectStore(StorageConfig.from_env(stack["s3"]))


@pytest.fixture(scope="package")
def api(stack: dict[str, Any]) -> Iterator[AirflowApi]:
    """The Airflow REST API, logged in as the stack's admin."""
    with contextlib.closing(AirflowApi(stack["airflow"]["url"], tuple(stack["airflow"]["credentials"]))) as client:
        yield client
