"""MLflow hook: tracking URI, auth, and the registry helpers every operator reuses."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_mlops_provider._optional import import_optional

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CONNECTION_TYPE_INFO: dict[str, Any] = {
    "hook-class-name": "airflow_mlops_provider.hooks.mlflow.MlflowHook",
    "connection-type": "mlflow",
    "hook-name": "MLflow",
    "conn-fields": {
        "auth_type": {
            "label": "Auth type (none, token or basic)",
            "description": "Unset (null): token when a token is set, basic when a username is set, else none.",
            "schema": {"type": ["string", "null"], "enum": ["none", "token", "basic", None]},
        },
        "token": {
            "label": "Bearer token (auth type token)",
            "description": "Sent as MLFLOW_TRACKING_TOKEN. Auth type token without one sends the password.",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "Tracking URI", "login": "Username (basic auth)", "password": "Password"},
        "placeholders": {"host": "http://mlflow:5000"},
    },
}


class AliasConflictError(RuntimeError):
    """An alias moved under us: its current version is not the one the caller expected."""


class MlflowHook(BaseHook):
    """Talks to an MLflow tracking server and model registry.

    The connection's host is the tracking URI. Auth is optional: a bearer token (extra ``token``, or the
    password with ``auth_type`` ``token``), or basic auth with login and password.

    :param mlflow_conn_id: the Airflow connection of type ``mlflow``.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self._client: MlflowClient | None = None
        self._env: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        """Environment that points an MLflow client (a subprocess or a pod) at this server, with auth."""
        if self._env is None:
            conn = self.get_connection(self.mlflow_conn_id)
            uri = (conn.host or "").rstrip("/")
            if not uri:
                raise ValueError(f"Connection {self.mlflow_conn_id!r} has no host: set it to the tracking URI")
            if "://" not in uri:
                port = f":{conn.port}" if conn.port else ""
                uri = f"http://{uri}{port}"
            extra = conn.extra_dejson
            auth = extra.get("auth_type") or ("token" if extra.get("token") else "basic" if conn.login else "none")
            env = {"MLFLOW_TRACKING_URI": uri}
            if auth == "token":
                token = extra.get("token") or conn.password
                if not token:
                    raise ValueError(f"Connection {self.mlflow_conn_id!r} uses token auth but has no token")
                env["MLFLOW_TRACKING_TOKEN"] = token
            elif auth == "basic":
                env["MLFLOW_TRACKING_USERNAME"] = conn.login or ""
                env["MLFLOW_TRACKING_PASSWORD"] = conn.password or ""
            self._env = env
        return dict(self._env)

    @staticmethod
    def secret_env_keys() -> list[str]:
        """The keys of :meth:`env` that hold secrets."""
        return ["MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"]

    @property
    def tracking_uri(self) -> str:
        """The tracking server's URI."""
        return self.env()["MLFLOW_TRACKING_URI"]

    def get_conn(self) -> MlflowClient:
        """An ``MlflowClient`` for this server. MLflow reads auth from the process environment, so it is set."""
        if self._client is None:
            mlflow = import_optional("mlflow", extra="trainer")
            env = self.env()
            os.environ.update(env)
            mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
            mlflow.set_registry_uri(env["MLFLOW_TRACKING_URI"])
            self._client = mlflow.MlflowClient(
                tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"]
            )
        return self._client

    def test_connection(self) -> tuple[bool, str]:
        """Check that the server answers and the credentials are accepted."""
        try:
            self.get_conn().search_experiments(max_results=1)
        except Exception as err:
            return False, f"MLflow at {self.tracking_uri} did not answer: {err}"
        return True, f"Connected to MLflow at {self.tracking_uri}"

    def get_or_create_experiment(self, name: str) -> str:
        """Return the id of experiment ``name``, creating it when missing.

        :param name: the experiment's name.
        """
        client = self.get_conn()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(name))
        except Exception:
            # Another task created it meanwhile.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def create_run(self, experiment_name: str, run_name: str | None, tags: dict[str, str]) -> str:
        """Create a run in ``experiment_name`` and return its id.

        :param experiment_name: created when missing.
        :param run_name: the run's display name.
        :param tags: tags set on the run at creation.
        """
        experiment_id = self.get_or_create_experiment(experiment_name)
        run = self.get_conn().create_run(experiment_id, run_name=run_name, tags=tags)
        return str(run.info.run_id)

    def find_runs_by_tags(self, experiment_name: str, tags: dict[str, str]) -> list[str]:
        """Ids of the runs in ``experiment_name`` carrying all ``tags``, newest first.

        :param experiment_name: the experiment to search.
        :param tags: exact tag values to match.
        """
        experiment = self.get_conn().get_experiment_by_name(experiment_name)
        if experiment is None:
            return []
        query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
        runs = self.get_conn().search_runs(
            [experiment.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"]
        )
        return [run.info.run_id for run in runs]

    def find_version_by_run_id(self, model_name: str, mlflow_run_id: str) -> ModelVersion | None:
        """The registered version of ``model_name`` made from an MLflow run, if any (the oldest if several).

        :param model_name: the registered model.
        :param mlflow_run_id: the MLflow run that produced the model.
        """
        versions = self.get_conn().search_model_versions(f"name = '{model_name}' and run_id = '{mlflow_run_id}'")
        return min(versions, key=lambda v: int(v.version)) if versions else None

    def get_alias_version(self, model_name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or ``None`` when the alias (or the model) does not exist.

        :param model_name: the registered model.
        :param alias: e.g. ``champion``.
        """
        from airflow_mlops_provider.core.models.lineage import alias_version

        return alias_version(self.get_conn(), model_name, alias)

    def move_alias(self, model_name: str, alias: str, version: str, expected_current: str | None) -> None:
        """Point ``alias`` at ``version`` only if it still points at ``expected_current`` (compare-and-set).

        MLflow has no atomic compare-and-set, so the alias is read just before and after the write; a
        concurrent move is detected and reported instead of silently overwritten.

        :param model_name: the registered model.
        :param alias: the alias to move.
        :param version: the version it should point at.
        :param expected_current: the version it must point at now (``None``: it must not exist).
        """
        current = self.get_alias_version(model_name, alias)
        if current == str(version):
            return
        if current != (None if expected_current is None else str(expected_current)):
            raise AliasConflictError(
                f"Alias {alias!r} of {model_name!r} points at version {current}, expected {expected_current}"
            )
        self.get_conn().set_registered_model_alias(model_name, alias, str(version))
        if self.get_alias_version(model_name, alias) != str(version):
            raise AliasConflictError(f"Alias {alias!r} of {model_name!r} was moved concurrently")

    def run_url(self, mlflow_run_id: str, experiment_id: str) -> str:
        """The web UI address of an MLflow run.

        :param mlflow_run_id: the run.
        :param experiment_id: its experiment.
        """
        return f"{self.tracking_uri}/#/experiments/{experiment_id}/runs/{mlflow_run_id}"

    def model_version_url(self, model_name: str, version: str) -> str:
        """The web UI address of a model version.

        :param model_name: the registered model.
        :param version: the version.
        """
        return f"{self.tracking_uri}/#/models/{model_name}/versions/{version}"
