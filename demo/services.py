"""The machine's PostgreSQL and Redis as the prod profile uses them: checked first, then a run's own
databases in them, removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from demo.processes import StackError

POSTGRES_URL_ENV = "DEMO_POSTGRES_URL"
REDIS_URL_ENV = "DEMO_REDIS_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
#: Marks a Redis database as taken by a stack (the value is the demo's pid).
REDIS_CLAIM_KEY = "airflow-mlops-demo:owner"


class MissingServiceError(StackError):
    """A service the prod profile needs does not answer."""


@dataclass(frozen=True)
class Services:
    """Where the machine's PostgreSQL and Redis are.

    :param postgres_url: a libpq URL of a superuser on a maintenance database.
    :param redis_url: ``redis://[[username]:password@]host:port`` (an ACL user, or the default one), with
        the password percent-encoded.
    """

    postgres_url: str
    redis_url: str

    @classmethod
    def from_env(cls) -> Services:
        """Read :data:`POSTGRES_URL_ENV` and :data:`REDIS_URL_ENV`, defaulting to loopback."""
        return cls(
            postgres_url=os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL,
            redis_url=os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL,
        )

    @property
    def postgres(self) -> Any:
        """The parts of the PostgreSQL URL (``hostname``, ``port``, ``username``, ``password``)."""
        return urlsplit(self.postgres_url)

    @property
    def redis(self) -> Any:
        """The parts of the Redis URL."""
        return urlsplit(self.redis_url)

    @property
    def redis_username(self) -> str:
        """The Redis ACL user, empty for the default user."""
        return unquote(self.redis.username or "")

    @property
    def redis_password(self) -> str:
        """The Redis password, decoded; empty for none."""
        return unquote(self.redis.password or "")

    def missing(self) -> list[str]:
        """One line per service that does not answer: what, where, and how to start it (empty if all do)."""
        problems = []
        try:
            with contextlib.closing(self.connect_postgres()):
                pass
        except Exception as err:  # any driver error means "not usable"
            problems.append(
                f"PostgreSQL at {self.postgres.hostname}:{self.postgres.port or 5432} ({type(err).__name__}: "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else err!r}). Start it, e.g. "
                "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set "
                f"{POSTGRES_URL_ENV}=postgresql://USER[:PASSWORD]@HOST:PORT/postgres"
            )
        try:
            self.redis_client(0).ping()
        except Exception as err:
            problems.append(
                f"Redis at {self.redis.hostname}:{self.redis.port or 6379} ({type(err).__name__}: {err}). Start "
                "it, e.g. `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''`, or set "
                f"{REDIS_URL_ENV}=redis://[:PASSWORD@]HOST:PORT"
            )
        return problems

    def check(self) -> None:
        """Raise :class:`MissingServiceError` naming each service that does not answer."""
        problems = self.missing()
        if problems:
            raise MissingServiceError(
                "the prod profile needs PostgreSQL and Redis:\n  " + "\n  ".join(problems) + "\n(plain "
                "`make demo` runs the embedded profile, which needs neither)"
            )

    def connect_postgres(self, dbname: str | None = None) -> Any:
        """An autocommit connection to the maintenance database, or to ``dbname``.

        :param dbname: another database of the server.
        """
        import psycopg2

        parts = self.postgres
        conn = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or "",
            dbname=dbname or parts.path.lstrip("/") or "postgres",
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn

    def redis_client(self, db: int) -> Any:
        """A Redis client of database ``db``.

        :param db: the database index.
        """
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        parts = self.redis
        return redis.Redis(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            username=self.redis_username or None,
            password=self.redis_password or None,
            db=db,
            socket_timeout=5,
            socket_connect_timeout=5,
            # No retry (redis-py's default is 3 with up to 14 s of backoff): a missing Redis is named at once.
            retry=Retry(NoBackoff(), 0),
        )


@dataclass
class ThrowawayDatabases:
    """PostgreSQL databases made for one stack run, dropped when it stops.

    :param services: the machine's services.
    :param names: the databases' names by purpose (``airflow``, ``mlflow``, ``feast``).
    """

    services: Services
    names: dict[str, str]
    name: str = "PostgreSQL databases"

    @classmethod
    def create(cls, services: Services, purposes: tuple[str, ...]) -> ThrowawayDatabases:
        """Create an empty database per purpose, under a prefix no other run uses.

        :param services: the machine's services.
        :param purposes: e.g. ``("airflow", "mlflow", "feast")``.
        """
        prefix = f"mlops_demo_{secrets.token_hex(4)}"
        dbs = cls(services, {purpose: f"{prefix}_{purpose}" for purpose in purposes})
        with contextlib.closing(services.connect_postgres()) as conn, conn.cursor() as cur:
            for db in dbs.names.values():
                cur.execute(f'CREATE DATABASE "{db}"')
        return dbs

    def check_alive(self) -> None:
        """Databases do not die with the stack."""

    def stop(self, grace_seconds: float) -> None:
        """Drop the databases, closing any connection left to them.

        :param grace_seconds: unused: dropping does not wait for clients.
        """
        with contextlib.closing(self.services.connect_postgres()) as conn, conn.cursor() as cur:
            for db in self.names.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@dataclass
class RedisDatabases:
    """Empty Redis databases claimed for one stack run (the broker, the online store), flushed at the end.

    :param services: the machine's services.
    :param indexes: the claimed database indexes by purpose.
    """

    services: Services
    indexes: dict[str, int]
    name: str = "Redis databases"

    @classmethod
    def claim(cls, services: Services, purposes: tuple[str, ...]) -> RedisDatabases:
        """Claim one empty database per purpose (index 1 to 15; 0 is everyone's default).

        :param services: the machine's services.
        :param purposes: e.g. ``("broker", "online")``.
        """
        indexes: dict[str, int] = {}
        for db in range(1, 16):
            if len(indexes) == len(purposes):
                break
            client = services.redis_client(db)
            if client.dbsize() == 0 and client.set(REDIS_CLAIM_KEY, os.getpid(), nx=True):
                indexes[purposes[len(indexes)]] = db
        claimed = cls(services, indexes)
        if len(indexes) < len(purposes):
            claimed.stop(0.0)
            raise StackError(f"Redis has fewer than {len(purposes)} empty databases among 1-15 for the prod profile")
        return claimed

    def check_alive(self) -> None:
        """Databases do not die with the stack."""

    def stop(self, grace_seconds: float) -> None:
        """Empty the claimed databases.

        :param grace_seconds: unused.
        """
        for db in self.indexes.values():
            self.services.redis_client(db).flushdb()
