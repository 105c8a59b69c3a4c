"""The prod profile: the topology of ``docker-compose.yaml`` as processes on one machine, minus the containers.

- Airflow: ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two ``celery worker`` processes
  (CeleryExecutor, Redis as broker), its metadata in a PostgreSQL database of its own;
- MLflow: ``mlflow server`` on a PostgreSQL backend store, artifacts in S3;
- Feast: a SQL registry on PostgreSQL, online features in Redis, offline parts in S3;
- ``[mlops] data_dir`` in S3: the workers and the trainer share nothing but S3, MLflow and the databases.

PostgreSQL and Redis are the machine's (``demo.services``: ``DEMO_POSTGRES_URL``, ``DEMO_REDIS_URL``, which may
name a Redis ACL user and its password); the profile makes its own databases in them and removes them at the end.
S3 is moto's server on loopback, standing in for MinIO. Every setting is named as in ``docker-compose.yaml``, and a
test renders the compose file with this profile's addresses and secrets to check that both say the same.
``DEMO_MLFLOW_TOKEN`` gives the workers' ``mlflow_default`` connection a bearer token, as for a tracking server
behind an auth proxy (the profile's own server ignores it).

While the stack runs, an Airflow component can be stopped and started again through files in
``<DEMO_HOME>/control/`` (:func:`request`, :func:`component_state`): a rolling restart, as an operator does one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from airflow_mlops_provider import __version__
from airflow_mlops_provider.config import DataFolder
from airflow_mlops_provider.core.io.storage import ObjectStore, StorageConfig
from demo.processes import (
    BIN_DIR,
    ManagedProcess,
    Resource,
    base_env,
    free_ports,
    http_ok,
    run_to_completion,
    wait_for,
)
from demo.services import RedisDatabases, Services, ThrowawayDatabases
from demo.stack import AirflowSite, Stack, repo_feast_config

PROFILE = "prod"
#: The buckets of the compose file's minio-init job.
DATA_BUCKET, ARTIFACTS_BUCKET = "mlops-data", "mlflow-artifacts"
REGION = "us-east-1"
#: Data Docs and drift reports open from the Airflow UI's links without an S3 login, as the compose file's
#: minio-init job allows (`mc anonymous set download`); everything else in the bucket stays private.
REPORTED_FOLDERS = (DataFolder.VALIDATION, DataFolder.DRIFT_REPORTS)
REPORTS_READABLE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": ["*"]},
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{DATA_BUCKET}/{folder}/*" for folder in REPORTED_FOLDERS],
        }
    ],
}
ADMIN = "admin"
#: The Celery workers, as the compose file scales ``airflow-worker``; one task at a time each.
WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 1
#: Celery workers that preload the tasks' libraries before they fork their pool.
CELERY_CONFIG_OPTIONS = "airflow_mlops_provider.preload_celery.CELERY_CONFIG"
MIGRATE_TIMEOUT = 600.0
STARTUP_TIMEOUT = 300.0
#: The bearer token of the workers' ``mlflow_default`` connection, if any.
MLFLOW_TOKEN_ENV = "DEMO_MLFLOW_TOKEN"
#: The folder of ``<DEMO_HOME>`` where a running stack takes requests to stop or start a component.
CONTROL_FOLDER = "control"
#: How long a component stopped on request may take to finish what it runs (a Celery worker drains its task).
DRAIN_TIMEOUT = 300.0


@dataclass(frozen=True)
class MotoS3:
    """moto's S3 server on loopback, standing in for MinIO.

    :param home: its log directory.
    :param port: its port.
    :param storage: the endpoint and the key the stack uses.
    """

    NAME: ClassVar[str] = "S3 (moto server)"
    home: Path
    port: int
    storage: StorageConfig

    def launch(self) -> ManagedProcess:
        """Start the server (without waiting for it)."""
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        return ManagedProcess.start(self.NAME, command, base_env(), self.home / "moto.log")

    def wait_ready(self, watched: list[Resource]) -> None:
        """Wait until it answers, then create the buckets (as the compose file's minio-init job does).

        :param watched: servers that must stay alive meanwhile.
        """
        wait_for("S3 to answer", lambda: http_ok(f"{self.storage.endpoint_url}/moto-api/"), 60, watched)
        client = ObjectStore(self.storage).client
        for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_policy(Bucket=DATA_BUCKET, Policy=json.dumps(REPORTS_READABLE))


@dataclass
class ProdSettings:
    """Every address and secret of one prod-profile run, named as the compose file and its ``.env`` name them.

    :param home: the state directory (logs, ``AIRFLOW_HOME``).
    :param dags_folder: the DAGs folder to serve.
    :param services: the machine's PostgreSQL and Redis.
    :param databases: the run's PostgreSQL databases by purpose.
    :param redis_dbs: the run's Redis databases by purpose.
    :param mlflow_token: the bearer token of the ``mlflow_default`` connection; empty for none.
    """

    home: Path
    dags_folder: Path
    services: Services
    databases: dict[str, str]
    redis_dbs: dict[str, int]
    mlflow_token: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)

    PORT_NAMES: ClassVar[tuple[str, ...]] = (
        "s3",
        "mlflow",
        "api",
        "scheduler_health",
        "trigger_log",
        *(f"{worker}_log" for worker in WORKERS),
    )

    def __post_init__(self) -> None:
        if not self.ports:
            self.ports = dict(zip(self.PORT_NAMES, free_ports(len(self.PORT_NAMES)), strict=True))
        if not self.secret:
            from cryptography.fernet import Fernet

            self.secret = {
                "MLOPS_S3_ACCESS_KEY": f"mlops-{secrets.token_hex(4)}",
                "MLOPS_S3_SECRET_KEY": secrets.token_urlsafe(24),
                "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(16),
                "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(64),
                "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),
            }

    @property
    def airflow_home(self) -> Path:
        """``AIRFLOW_HOME`` of every Airflow component."""
        return self.home / "airflow"

    def variables(self) -> dict[str, str]:
        """The values of the compose file's ``.env`` variables in this run (database users have no password:
        the machine's PostgreSQL trusts loopback)."""
        pg = self.services.postgres
        pg_user, pg_password = pg.username or "postgres", pg.password or ""
        return {
            "POSTGRES_USER": pg_user,
            "POSTGRES_PASSWORD": pg_password,
            "POSTGRES_DB": self.databases["airflow"],
            "MLFLOW_DB_USER": pg_user,
            "MLFLOW_DB_PASSWORD": pg_password,
            "MLFLOW_DB_NAME": self.databases["mlflow"],
            "FEAST_DB_USER": pg_user,
            "FEAST_DB_PASSWORD": pg_password,
            "FEAST_DB_NAME": self.databases["feast"],
            "REDIS_PASSWORD": self.services.redis_password,
            "REDIS_BROKER_DB": str(self.redis_dbs["broker"]),
            "REDIS_ONLINE_DB": str(self.redis_dbs["online"]),
            "MLOPS_S3_REGION": REGION,
            "AIRFLOW_ADMIN_USERNAME": ADMIN,
            "TRAINER_IMAGE": f"airflow-mlops-provider/trainer:{__version__}",
            **self.secret,
        }

    def addresses(self) -> dict[str, str]:
        """The ``host:port`` of each compose service in this run."""
        pg, rd = self.services.postgres, self.services.redis
        return {
            "postgres:5432": f"{pg.hostname}:{pg.port or 5432}",
            "redis:6379": f"{rd.hostname}:{rd.port or 6379}",
            "minio:9000": f"127.0.0.1:{self.ports['s3']}",
            "mlflow:5000": f"127.0.0.1:{self.ports['mlflow']}",
            "airflow-api-server:8080": f"127.0.0.1:{self.ports['api']}",
        }

    def url(self, service: str) -> str:
        """``http://host:port`` of a compose service in this run.

        :param service: e.g. ``mlflow:5000``.
        """
        return f"http://{self.addresses()[service]}"

    @property
    def storage(self) -> StorageConfig:
        """The S3 endpoint and key of the run."""
        var = self.variables()
        return StorageConfig(
            endpoint_url=self.url("minio:9000"),
            access_key_id=var["MLOPS_S3_ACCESS_KEY"],
            secret_access_key=var["MLOPS_S3_SECRET_KEY"],
            region_name=REGION,
        )

    def postgres_url(self, driver: str, user: str, password: str, db: str) -> str:
        """A SQLAlchemy URL of a database on the machine's PostgreSQL.

        :param driver: e.g. ``postgresql+psycopg2``.
        :param user: the role.
        :param password: its password.
        :param db: the database.
        """
        return f"{driver}://{user}:{password}@{self.addresses()['postgres:5432']}/{db}"

    def feast_config(self) -> dict[str, Any]:
        """The repo's Feast config with a SQL registry on PostgreSQL and the Redis online store."""
        var = self.variables()
        config = repo_feast_config(self.dags_folder)
        config["registry"] = {
            "registry_type": "sql",
            "path": self.postgres_url(
                "postgresql+psycopg", var["FEAST_DB_USER"], var["FEAST_DB_PASSWORD"], var["FEAST_DB_NAME"]
            ),
            "cache_ttl_seconds": 60,
        }
        user = f",username={self.services.redis_username}" if self.services.redis_username else ""
        config["online_store"] = {
            "type": "redis",
            "connection_string": (
                f"{self.addresses()['redis:6379']}{user},password={var['REDIS_PASSWORD']},db={var['REDIS_ONLINE_DB']}"
            ),
        }
        return config

    def broker_url(self) -> str:
        """The Celery broker: the run's Redis database, as the profile's Redis user."""
        var = self.variables()
        login = f"{quote(self.services.redis_username, safe='')}:{quote(var['REDIS_PASSWORD'], safe='')}"
        return f"redis://{login}@{self.addresses()['redis:6379']}/{var['REDIS_BROKER_DB']}"

    def site(self) -> AirflowSite:
        """The settings the Airflow components share with the embedded profile."""
        return AirflowSite(
            home=self.airflow_home,
            dags_folder=self.dags_folder,
            api_host="127.0.0.1",
            api_port=self.ports["api"],
            worker_log_port=self.ports[f"{WORKERS[0]}_log"],
            trigger_log_port=self.ports["trigger_log"],
            mlflow_url=self.url("mlflow:5000"),
            data_dir=f"s3://{DATA_BUCKET}",
            feast_config=self.feast_config(),
            feature_data_uri=f"s3://{DATA_BUCKET}/feature_store/offline",
        )

    def airflow_env(self) -> dict[str, str]:
        """The configuration of every Airflow component (the compose file's ``x-airflow-common`` env)."""
        var = self.variables()
        storage = self.storage
        s3_connection = {
            "conn_type": "mlops_s3",
            "login": storage.access_key_id,
            "password": storage.secret_access_key,
            "extra": {"endpoint_url": storage.endpoint_url, "region_name": REGION},
        }
        mlflow_connection = {
            "conn_type": "mlflow",
            "host": self.url("mlflow:5000"),
            "extra": {"token": self.mlflow_token},
        }
        mlflow = {"AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(mlflow_connection)} if self.mlflow_token else {}
        return (
            self.site().env()
            | mlflow
            | {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres_url(
                    "postgresql+psycopg2", var["POSTGRES_USER"], var["POSTGRES_PASSWORD"], var["POSTGRES_DB"]
                ),
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url(),
                # The workers import the tasks' libraries once, before they fork their pool (see preload_celery).
                "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
                "AIRFLOW__CORE__FERNET_KEY": var["AIRFLOW_FERNET_KEY"],
                "AIRFLOW__API__SECRET_KEY": var["AIRFLOW_API_SECRET_KEY"],
                "AIRFLOW__API_AUTH__JWT_SECRET": var["AIRFLOW_JWT_SECRET"],
                "AIRFLOW__API__WORKERS": "2",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{var['AIRFLOW_ADMIN_USERNAME']}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.ports["scheduler_health"]),
                "AIRFLOW__MLOPS__TRAINER_IMAGE": var["TRAINER_IMAGE"],
                "AIRFLOW_CONN_MLOPS_S3_DEFAULT": json.dumps(s3_connection),
                # The example DAGs' dataset reads and the local trainer take the S3 settings from these.
                "AWS_ENDPOINT_URL": str(storage.endpoint_url),
                "AWS_ACCESS_KEY_ID": var["MLOPS_S3_ACCESS_KEY"],
                "AWS_SECRET_ACCESS_KEY": var["MLOPS_S3_SECRET_KEY"],
                "AWS_DEFAULT_REGION": var["MLOPS_S3_REGION"],
            }
        )

    def worker_env(self, worker: str) -> dict[str, str]:
        """A Celery worker's configuration: the common one, with its own log server port on this host.

        :param worker: one of :data:`WORKERS`.
        """
        return self.airflow_env() | {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports[f"{worker}_log"])}

    @property
    def passwords_file(self) -> Path:
        """The SimpleAuthManager passwords file the api-server reads."""
        return self.airflow_home / "simple_auth_manager_passwords.json"

    def mlflow_env(self) -> dict[str, str]:
        """The ``mlflow server`` environment (the compose file's ``mlflow`` service env)."""
        var = self.variables()
        return {
            "MLFLOW_BACKEND_STORE_URI": self.postgres_url(
                "postgresql+psycopg2", var["MLFLOW_DB_USER"], var["MLFLOW_DB_PASSWORD"], var["MLFLOW_DB_NAME"]
            ),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_S3_ENDPOINT_URL": self.url("minio:9000"),
            "AWS_ACCESS_KEY_ID": var["MLOPS_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": var["MLOPS_S3_SECRET_KEY"],
            "AWS_DEFAULT_REGION": var["MLOPS_S3_REGION"],
        }

    def mlflow_command(self) -> list[str]:
        """``mlflow server`` with its artifacts in S3, proxied: clients upload through the server."""
        port = self.ports["mlflow"]
        return [
            str(BIN_DIR / "mlflow"),
            "server",
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers=2",
            f"--artifacts-destination=s3://{ARTIFACTS_BUCKET}",
            f"--allowed-hosts=127.0.0.1:{port},localhost:{port}",
        ]

    def airflow_commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Each long-running Airflow component: its command line and its configuration."""
        airflow = str(BIN_DIR / "airflow")
        common = self.airflow_env()
        commands = {
            "airflow api-server": ([airflow, "api-server"], common),
            "airflow scheduler": ([airflow, "scheduler"], common),
            "airflow dag-processor": ([airflow, "dag-processor"], common),
            "airflow triggerer": ([airflow, "triggerer"], common),
        }
        for worker in WORKERS:
            command = [
                airflow,
                "celery",
                "worker",
                f"--concurrency={WORKER_CONCURRENCY}",
                f"--celery-hostname={worker}@%h",
            ]
            commands[f"airflow celery {worker}"] = (command, self.worker_env(worker))
        return commands


Action = Literal["stop", "start"]


def _control_file(home: Path, component: str, suffix: str) -> Path:
    """``<home>/control/<component, dashed>.<suffix>``."""
    return home / CONTROL_FOLDER / f"{component.replace(' ', '-')}.{suffix}"


def request(home: Path, component: str, action: Action) -> None:
    """Ask the running stack to stop or start one of its Airflow components; it acts within a second or so,
    then :func:`component_state` says ``stopped`` or ``running <pid>``.

    :param home: the demo's state directory.
    :param component: e.g. ``airflow scheduler``, ``airflow celery worker1``.
    :param action: ``stop`` (gracefully: a Celery worker first finishes its task) or ``start``.
    """
    path = _control_file(home, component, "request")
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".staged")
    staged.write_text(action)
    os.replace(staged, path)


def component_state(home: Path, component: str) -> str | None:
    """What the stack last did on a request for ``component``: ``stopped``, ``running <pid>``, or ``None``.

    :param home: the demo's state directory.
    :param component: the component, as given to :func:`request`.
    """
    path = _control_file(home, component, "state")
    return path.read_text() if path.exists() else None


@dataclass
class ControlledProcess(ManagedProcess):
    """An Airflow component that can be stopped and started again on request while the stack runs.

    The demo polls its servers every second (``check_alive``): that is when a request is carried out. A
    component stopped on request has not failed.

    :param command: its command line.
    :param env: its environment.
    :param home: the demo's state directory (requests come from its control folder).
    :param held: whether it is stopped on request.
    """

    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    home: Path = Path()
    held: bool = False

    @classmethod
    def launch(
        cls, name: str, command: list[str], env: dict[str, str], log_path: Path, home: Path
    ) -> ControlledProcess:
        """Start a component.

        :param name: e.g. ``airflow scheduler``.
        :param command: the command line.
        :param env: the full environment.
        :param log_path: its log file (appended to across restarts).
        :param home: the demo's state directory.
        """
        started = ManagedProcess.start(name, command, env, log_path)
        return cls(started.name, started.popen, log_path, command, env, home)

    def check_alive(self) -> None:
        """Carry out a pending request, then raise :class:`~demo.processes.StackError` if the component died."""
        path = _control_file(self.home, self.name, "request")
        action = path.read_text() if path.exists() else None
        if action == "stop" and not self.held:
            self._drain()
            self.held = True
        elif action == "start" and self.held:
            self.popen = ManagedProcess.start(self.name, self.command, self.env, self.log_path).popen
            self.held = False
        if action is not None:
            path.unlink()
            state = _control_file(self.home, self.name, "state")
            state.write_text("stopped" if self.held else f"running {self.pid}")
        if not self.held:
            super().check_alive()

    def _drain(self) -> None:
        """SIGTERM to the leader alone, which lets a Celery worker finish its task (warm shutdown) and a
        scheduler hand over; then stop whatever of it is left."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(DRAIN_TIMEOUT)
        self.stop(5.0)


def launch(home: Path, dags_folder: Path, resources: list[Resource]) -> Stack:
    """Check the services, make the run's databases, start S3, MLflow and Airflow, and wait until all are ready.

    :param home: the state directory.
    :param dags_folder: the DAGs folder to serve.
    :param resources: receives each database and server as soon as it exists, so the caller can always stop it.
    """
    services = Services.from_env()
    services.check()
    databases = ThrowawayDatabases.create(services, ("airflow", "mlflow", "feast"))
    resources.append(databases)
    redis_dbs = RedisDatabases.claim(services, ("broker", "online"))
    resources.append(redis_dbs)
    settings = ProdSettings(
        home, dags_folder, services, databases.names, redis_dbs.indexes, os.environ.get(MLFLOW_TOKEN_ENV, "")
    )
    storage = settings.storage
    s3 = MotoS3(home / "s3", settings.ports["s3"], storage)
    site = settings.site()
    print(
        f"Starting the prod profile: PostgreSQL databases {', '.join(databases.names.values())}, Redis databases "
        f"{redis_dbs.indexes}, S3 on {storage.endpoint_url}, MLflow on {site.mlflow_url}, Airflow on {site.url} "
        f"with {len(WORKERS)} Celery workers (logs under {home}) ...",
        flush=True,
    )
    resources.append(s3.launch())
    s3.wait_ready(resources)
    mlflow_log = home / "mlflow" / "server.log"
    resources.append(
        ManagedProcess.start("mlflow server", settings.mlflow_command(), base_env() | settings.mlflow_env(), mlflow_log)
    )
    site.make_dirs()
    run_to_completion(
        "airflow db migrate",
        [str(BIN_DIR / "airflow"), "db", "migrate"],
        base_env() | settings.airflow_env(),
        settings.airflow_home / "db-migrate.log",
        MIGRATE_TIMEOUT,
    )
    write_passwords_file(settings)
    for name, (command, env) in settings.airflow_commands().items():
        log = settings.airflow_home / f"{name.removeprefix('airflow ').replace(' ', '-')}.log"
        resources.append(ControlledProcess.launch(name, command, base_env() | env, log, home))
    credentials = (ADMIN, settings.secret["AIRFLOW_ADMIN_PASSWORD"])
    stack = Stack.of(PROFILE, site, ObjectStore(storage), resources, credentials, stack_info(settings))
    stack.write_file(home)
    wait_for("MLflow /health", lambda: http_ok(f"{site.mlflow_url}/health"), 120, resources)
    with contextlib.closing(stack.api()) as api:
        wait_for("Airflow's components to be healthy", api.healthy, STARTUP_TIMEOUT, resources)
    for worker, log in worker_logs(settings).items():
        wait_for(f"Celery {worker} to be ready", functools.partial(_ready, log), STARTUP_TIMEOUT, resources)
    return stack


def write_passwords_file(settings: ProdSettings) -> None:
    """Write the admin's password where the SimpleAuthManager reads it, readable by the owner only.

    :param settings: the run's settings.
    """
    path = settings.passwords_file
    path.touch(mode=0o600)
    path.write_text(json.dumps({ADMIN: settings.secret["AIRFLOW_ADMIN_PASSWORD"]}))


def worker_logs(settings: ProdSettings) -> dict[str, Path]:
    """Each Celery worker's log file.

    :param settings: the run's settings.
    """
    return {worker: settings.airflow_home / f"celery-{worker}.log" for worker in WORKERS}


def _ready(log: Path) -> bool | None:
    """``True`` once a Celery worker's log says it is ready, else ``None``."""
    return True if log.exists() and " ready." in log.read_text(errors="replace") else None


def stack_info(settings: ProdSettings) -> dict[str, Any]:
    """What the e2e test needs to inspect the run: S3, the databases, the workers' logs.

    :param settings: the run's settings.
    """
    return {
        "ports": sorted(settings.ports.values()),
        "s3": {**settings.storage.to_env(), "bucket": DATA_BUCKET, "artifacts_bucket": ARTIFACTS_BUCKET},
        "postgres": {"url": settings.services.postgres_url, "databases": settings.databases},
        "redis": {"address": settings.addresses()["redis:6379"], "databases": settings.redis_dbs},
        "feast_config": settings.feast_config(),
        "feast_repo": str(settings.dags_folder / "feature_repo"),
        "worker_logs": {worker: str(log) for worker, log in worker_logs(settings).items()},
    }
