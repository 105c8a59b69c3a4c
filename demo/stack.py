"""A running demo stack, whatever its profile, and the Airflow settings every profile shares.

A profile (``embedded`` or ``prod``) starts its servers and returns a :class:`Stack`: the URLs, where
``[mlops] data_dir`` is and how to reach it, and what to stop at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_mlops_provider.core.io.storage import ObjectStore
from demo.api import AirflowApi
from demo.processes import ManagedProcess, Resource

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
#: The env var the DAGs' feature repo reads for its offline data (``dags/feature_repo/catalog.py``).
FEATURE_DATA_ENV = "MLOPS_FEATURE_DATA_URI"
#: The OpenLineage namespace of the demo's Airflow jobs.
LINEAGE_NAMESPACE = "airflow-mlops-demo"


@dataclass
class Stack:
    """The running servers of one profile.

    :param profile: ``embedded`` or ``prod``.
    :param mlflow_url: the tracking server.
    :param airflow_url: the API server's (and UI's) base URL.
    :param airflow_home: ``AIRFLOW_HOME`` of the Airflow components (task logs under ``logs/``).
    :param dags_folder: the DAGs served.
    :param data_dir: ``[mlops] data_dir``: a local directory or an ``s3://`` prefix.
    :param store: reads and writes ``data_dir`` as the tasks do.
    :param resources: what was started, in start order; stopped in reverse.
    :param credentials: the API user, when the API requires a login.
    :param info: more of the profile for ``stack.json`` (the e2e tests read it).
    """

    profile: str
    mlflow_url: str
    airflow_url: str
    airflow_home: Path
    dags_folder: Path
    data_dir: str
    store: ObjectStore
    resources: list[Resource]
    credentials: tuple[str, str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        profile: str,
        site: AirflowSite,
        store: ObjectStore,
        resources: list[Resource],
        credentials: tuple[str, str] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Stack:
        """The stack whose Airflow components were given ``site``.

        :param profile: ``embedded`` or ``prod``.
        :param site: the Airflow settings of the profile.
        :param store: reads and writes ``site.data_dir``.
        :param resources: what was started.
        :param credentials: the API user, when the API requires a login.
        :param info: more of the profile for ``stack.json``.
        """
        return cls(
            profile=profile,
            mlflow_url=site.mlflow_url,
            airflow_url=site.url,
            airflow_home=site.home,
            dags_folder=site.dags_folder,
            data_dir=site.data_dir,
            store=store,
            resources=resources,
            credentials=credentials,
            info=info or {},
        )

    @property
    def processes(self) -> list[ManagedProcess]:
        """The server processes among the resources."""
        return [res for res in self.resources if isinstance(res, ManagedProcess)]

    def check_alive(self) -> None:
        """Raise :class:`~demo.processes.StackError` if a server has died."""
        for res in self.resources:
            res.check_alive()

    def api(self) -> AirflowApi:
        """A client of the Airflow REST API, logged in when the profile requires it."""
        return AirflowApi(self.airflow_url, self.credentials)

    def write_file(self, home: Path) -> None:
        """Record the stack in ``<home>/stack.json`` (read by the e2e tests), readable by the owner only.

        :param home: the state directory.
        """
        info = {
            "profile": self.profile,
            "mlflow": {"url": self.mlflow_url},
            "airflow": {"url": self.airflow_url, "home": str(self.airflow_home), "credentials": self.credentials},
            "data_dir": self.data_dir,
            "sessions": [proc.pid for proc in self.processes],
            **self.info,
        }
        path = home / "stack.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(info, indent=2))


@dataclass(frozen=True)
class AirflowSite:
    """What every Airflow component is told in every profile: where things are and how to reach them.

    :param home: ``AIRFLOW_HOME``.
    :param dags_folder: the DAGs folder.
    :param api_host: the host the API server binds.
    :param api_port: the API server's port.
    :param worker_log_port: the port of a worker's log server.
    :param trigger_log_port: the port of the triggerer's log server.
    :param mlflow_url: the tracking server.
    :param data_dir: ``[mlops] data_dir``.
    :param feast_config: the ``feature_store.yaml`` content of the ``feast_default`` connection.
    :param feature_data_uri: where the feature repo's offline parquet parts live.
    """

    home: Path
    dags_folder: Path
    api_host: str
    api_port: int
    worker_log_port: int
    trigger_log_port: int
    mlflow_url: str
    data_dir: str
    feast_config: dict[str, Any]
    feature_data_uri: str

    @property
    def url(self) -> str:
        """The API server's (and UI's) base URL."""
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def lineage_prefix(self) -> Path:
        """Where OpenLineage's file transport writes each event (``<prefix>-<time>-<job>-<type>.json``)."""
        return self.home / "logs" / "openlineage" / "events"

    def make_dirs(self) -> None:
        """Create ``AIRFLOW_HOME`` and the folder of the lineage events."""
        self.lineage_prefix.parent.mkdir(parents=True, exist_ok=True)

    @property
    def feature_repo(self) -> Path:
        """The Feast definitions of the DAGs."""
        return self.dags_folder / "feature_repo"

    def env(self) -> dict[str, str]:
        """The settings shared by every profile, as environment variables."""
        feast_extra = {"repo_path": str(self.feature_repo), "feature_store_yaml": yaml.safe_dump(self.feast_config)}
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The demo unpauses the DAGs of its story; the others (drift_watch) stay paused.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": self.api_host,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # A changed DAG file is re-parsed at once whatever this says; unchanged ones every 10 minutes, not
            # every 30 s (each parse of continuous_training.py imports the Kubernetes client: seconds of CPU).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # A task process's calls to the execution API wait this long per attempt (5 attempts), not 5 s: on
            # a busy machine a task would otherwise fail before it starts, with no retry to save it.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            # OpenLineage events of every task, as JSON files (a Marquez or DataHub endpoint in production).
            "AIRFLOW__OPENLINEAGE__NAMESPACE": LINEAGE_NAMESPACE,
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(self.lineage_prefix)}),
            "AIRFLOW__MLOPS__TRAINING_BACKEND": "local",
            "AIRFLOW__MLOPS__DATA_DIR": self.data_dir,
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": self.mlflow_url}),
            "AIRFLOW_CONN_FEAST_DEFAULT": json.dumps({"conn_type": "feast", "extra": feast_extra}),
            FEATURE_DATA_ENV: self.feature_data_uri,
        }


def repo_feast_config(dags_folder: Path) -> dict[str, Any]:
    """The feature repo's own ``feature_store.yaml``, which each profile adapts.

    :param dags_folder: the DAGs folder.
    """
    config: dict[str, Any] = yaml.safe_load((dags_folder / "feature_repo" / "feature_store.yaml").read_text())
    return config
