"""The embedded profile: ``mlflow server`` on SQLite and ``airflow standalone`` (SQLite, LocalExecutor).

It needs nothing but this package: all state lives under one local directory.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from airflow_mlops_provider.core.io.storage import ObjectStore
from demo.api import AirflowApi
from demo.processes import BIN_DIR, ManagedProcess, Resource, base_env, free_ports, http_ok, wait_for
from demo.stack import AirflowSite, Stack, repo_feast_config

PROFILE = "embedded"
PRELOADING_EXECUTOR = "airflow_mlops_provider.preload.PreloadingLocalExecutor"


@dataclass(frozen=True)
class MlflowServer:
    """Settings of the demo's ``mlflow server``: sqlite store and local artifacts under ``home``."""

    NAME: ClassVar[str] = "mlflow server"
    home: Path
    port: int

    @property
    def url(self) -> str:
        """The tracking URI."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The ``mlflow server`` command line."""
        return [
            str(BIN_DIR / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.home / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "2",
            "--allowed-hosts",
            f"127.0.0.1:{self.port},localhost:{self.port}",
        ]

    def launch(self) -> ManagedProcess:
        """Start the server (without waiting for it)."""
        env = base_env() | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        return ManagedProcess.start(self.NAME, self.command(), env, self.home / "server.log")

    def wait_ready(self, watched: list[Resource]) -> None:
        """Wait until ``/health`` answers.

        :param watched: servers that must stay alive meanwhile.
        """
        wait_for("MLflow /health", lambda: http_ok(f"{self.url}/health"), 120, watched)


@dataclass(frozen=True)
class AirflowStandalone:
    """``airflow standalone`` on SQLite with the LocalExecutor, no login, its API on loopback.

    :param site: the settings every profile shares.
    """

    NAME: ClassVar[str] = "airflow standalone"
    site: AirflowSite

    @classmethod
    def feast_config(cls, dags_folder: Path, store: Path) -> dict[str, object]:
        """The repo's Feast config with its registry and sqlite online store moved under ``store``.

        :param dags_folder: the DAGs folder.
        :param store: the directory of the feature store's state.
        """
        config = repo_feast_config(dags_folder)
        config["registry"] = str(store / "registry.db")
        config["online_store"]["path"] = str(store / "online_store.db")
        return config

    def env(self) -> dict[str, str]:
        """The environment of ``airflow standalone``: all its configuration, connections included."""
        home = self.site.home
        return (
            base_env()
            | self.site.env()
            | {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                # The LocalExecutor, importing the tasks' libraries once before it forks its workers: every
                # task process inherits them instead of importing them again (airflow_mlops_provider/preload.py).
                "AIRFLOW__CORE__EXECUTOR": PRELOADING_EXECUTOR,
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            }
        )

    def launch(self) -> ManagedProcess:
        """Start ``airflow standalone`` (without waiting for it)."""
        command = [str(BIN_DIR / "airflow"), "standalone"]
        return ManagedProcess.start(self.NAME, command, self.env(), self.site.home / "standalone.log")

    def wait_ready(self, watched: list[Resource]) -> None:
        """Wait until the API reports the metadatabase, scheduler, DAG processor and triggerer healthy.

        :param watched: servers that must stay alive meanwhile.
        """
        with contextlib.closing(AirflowApi(self.site.url)) as api:
            wait_for("Airflow's components to be healthy", api.healthy, 300, watched)


def launch(home: Path, dags_folder: Path, resources: list[Resource]) -> Stack:
    """Start MLflow and ``airflow standalone`` side by side, all state under ``home``; wait until both are ready.

    :param home: the state directory.
    :param dags_folder: the DAGs folder to serve.
    :param resources: receives each server as soon as it is started, so the caller can always stop it.
    """
    mlflow_port, api_port, worker_log_port, trigger_log_port = free_ports(4)
    mlflow = MlflowServer(home=home / "mlflow", port=mlflow_port)
    data_dir = home / "data"
    site = AirflowSite(
        home=home / "airflow",
        dags_folder=dags_folder,
        api_host="127.0.0.1",
        api_port=api_port,
        worker_log_port=worker_log_port,
        trigger_log_port=trigger_log_port,
        mlflow_url=mlflow.url,
        data_dir=str(data_dir),
        feast_config=AirflowStandalone.feast_config(dags_folder, data_dir / "feature_store"),
        feature_data_uri=str(data_dir / "feature_store" / "offline"),
    )
    airflow = AirflowStandalone(site)
    print(f"Starting MLflow on {mlflow.url} and Airflow on {site.url} (logs under {home}) ...", flush=True)
    site.make_dirs()
    resources.append(mlflow.launch())
    resources.append(airflow.launch())
    ports = [mlflow_port, api_port, worker_log_port, trigger_log_port]
    stack = Stack.of(PROFILE, site, ObjectStore(), resources, info={"ports": ports})
    stack.write_file(home)
    mlflow.wait_ready(resources)
    airflow.wait_ready(resources)
    return stack
