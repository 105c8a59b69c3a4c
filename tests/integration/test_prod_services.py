"""The prod profile's throwaway PostgreSQL and Redis databases, on the machine's real servers."""

from __future__ import annotations

import contextlib
import os

import psycopg2
import pytest

from demo.services import REDIS_CLAIM_KEY, RedisDatabases, Services, ThrowawayDatabases

pytestmark = pytest.mark.integration


@pytest.fixture
def services() -> Services:
    """The machine's PostgreSQL and Redis; fails under ``CI=true`` when one is missing, else skips."""
    found = Services.from_env()
    missing = found.missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("\n".join(missing))
        pytest.skip("\n".join(missing))
    return found


def _existing(services: Services, names: list[str]) -> list[str]:
    with contextlib.closing(services.connect_postgres()) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY datname", (names,))
        return [row[0] for row in cur.fetchall()]


def test_databases_are_created_apart_and_dropped_even_with_clients(services: Services) -> None:
    first = ThrowawayDatabases.create(services, ("airflow", "mlflow"))
    second = ThrowawayDatabases.create(services, ("airflow", "mlflow"))
    names = [*first.names.values(), *second.names.values()]
    try:
        assert sorted(_existing(services, names)) == sorted(names) and len(set(names)) == 4
        client = services.connect_postgres(first.names["airflow"])  # a server left connected
        first.stop(0.0)
        assert _existing(services, list(first.names.values())) == []
        with pytest.raises(psycopg2.OperationalError), contextlib.closing(client), client.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        first.stop(0.0)
        second.stop(0.0)
    assert _existing(services, names) == []


def test_redis_databases_are_claimed_empty_and_flushed(services: Services) -> None:
    first = RedisDatabases.claim(services, ("broker", "online"))
    try:
        second = RedisDatabases.claim(services, ("broker",))
        try:
            assert not set(first.indexes.values()) & set(second.indexes.values())
            online = services.redis_client(first.indexes["online"])
            online.set("feature", "value")
            assert online.get(REDIS_CLAIM_KEY) is not None
        finally:
            second.stop(0.0)
    finally:
        first.stop(0.0)
    assert [db for db in first.indexes.values() if services.redis_client(db).dbsize()] == []
