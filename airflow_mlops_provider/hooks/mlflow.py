"""MLflow hook: tracking URI, auth, and the registry helpers every operator reuses."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_mlops_provider._optional import import_optional

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from airflow_mlops_provider.core.models.history import AliasChange
    from airflow_mlops_provider.core.models.lease import PromotionLease

#: The MLflow client settings of a task (a process environment that sets one wins). Every HTTP call is
#: bounded: it gives up after 4 tries of at most 20 s each, with backoff 1, 2, 4 s (+ up to 1 s jitter
#: each), so a refused connection fails in about 10 s and a server that accepts and hangs in about 90 s.
#: No tqdm progress bars in task logs.
CLIENT_ENV: dict[str, str] = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
#: Schemes a tracking URI may have (a server, Databricks, or a tracking store MLflow opens directly).
TRACKING_SCHEMES = ("http", "https", "databricks", "file", "sqlite", "postgresql", "mysql", "mssql")

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
            if "://" not in uri and uri != "databricks":
                port = f":{conn.port}" if conn.port else ""
                uri = f"http://{uri}{port}"
            scheme = uri.split("://", 1)[0].split("+", 1)[0]
            if any(char.isspace() for char in uri) or scheme not in TRACKING_SCHEMES:
                raise ValueError(
                    f"Connection {self.mlflow_conn_id!r} has tracking URI {uri!r}: expected a URI such as "
                    f"http://mlflow:5000 (schemes: {', '.join(TRACKING_SCHEMES)})"
                )
            extra = conn.extra_dejson
            auth = extra.get("auth_type") or ("token" if extra.get("token") else "basic" if conn.login else "none")
            env = {"MLFLOW_TRACKING_URI": uri} | {key: os.environ.get(key, value) for key, value in CLIENT_ENV.items()}
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
        from airflow_mlops_provider.core.models.lineage import filter_value

        if any("`" in key for key in tags):
            raise ValueError(f"MLflow search filters cannot name a tag key with a backtick: {sorted(tags)}")
        query = " and ".join(f"tags.`{key}` = {filter_value(value)}" for key, value in tags.items())
        runs = self.get_conn().search_runs(
            [experiment.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"]
        )
        return [run.info.run_id for run in runs]

    def find_version_by_run_id(self, model_name: str, mlflow_run_id: str) -> ModelVersion | None:
        """The registered version of ``model_name`` made from an MLflow run, if any (the oldest if several).

        :param model_name: the registered model.
        :param mlflow_run_id: the MLflow run that produced the model.
        """
        from airflow_mlops_provider.core.models.lineage import filter_value

        query = f"name = {filter_value(model_name)} and run_id = {filter_value(mlflow_run_id)}"
        versions = self.get_conn().search_model_versions(query)
        return min(versions, key=lambda v: int(v.version)) if versions else None

    def get_alias_version(self, model_name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or ``None`` when the alias (or the model) does not exist.

        :param model_name: the registered model.
        :param alias: e.g. ``champion``.
        """
        from airflow_mlops_provider.core.models.lineage import alias_version

        return alias_version(self.get_conn(), model_name, alias)

    def move_alias(
        self,
        model_name: str,
        alias: str,
        version: str,
        expected_current: str | None,
        change: AliasChange | None = None,
    ) -> None:
        """Point ``alias`` at ``version`` only if it still points at ``expected_current`` (compare-and-set), and
        append the move to the model's champion history (:mod:`~airflow_mlops_provider.core.models.history`).

        MLflow has no atomic compare-and-set, so the alias is read just before and after the write; a
        concurrent move is detected and reported instead of silently overwritten. The history entry is
        appended just before the move (once per key: a retry of a try killed in between finds it and makes the
        move), so no move is unrecorded; an alias already at ``version`` is left alone. Call it holding the
        model's promotion lease.

        :param model_name: the registered model.
        :param alias: the alias to move.
        :param version: the version it should point at.
        :param expected_current: the version it must point at now (``None``: it must not exist).
        :param change: why it moves (kind, task, who, reason); ``None``: a manual move.
        """
        from airflow_mlops_provider.core.models.history import AliasChange, HistoryKind, record_move
        from airflow_mlops_provider.failpoints import failpoint

        expected = None if expected_current is None else str(expected_current)
        current = self.get_alias_version(model_name, alias)
        if current == str(version):
            return  # moved already (by an earlier try, whose entry was written before its move)
        if current != expected:
            raise AliasConflictError(
                f"Alias {alias!r} of {model_name!r} points at version {current}, expected {expected_current}"
            )
        # The entry first: a move is never left unrecorded; a retry of a try killed in between finds it
        # (same key) and makes the move.
        record_move(
            self.get_conn(), model_name, alias, expected, str(version), change or AliasChange(HistoryKind.MANUAL, "")
        )
        failpoint("registry.after_history")
        self.get_conn().set_registered_model_alias(model_name, alias, str(version))
        if self.get_alias_version(model_name, alias) != str(version):
            raise AliasConflictError(f"Alias {alias!r} of {model_name!r} was moved concurrently")

    def promotion_lease(
        self, model_name: str, holder: str, try_number: int = 1, ttl: float = 300.0, wait: float = 900.0
    ) -> PromotionLease:
        """The lease that serializes the promotions and rollbacks of ``model_name`` (a context manager).

        :param model_name: the registered model.
        :param holder: who takes it, e.g. ``dag/run/task``.
        :param try_number: the holder's try (a retry removes the tickets of its earlier tries).
        :param ttl: seconds a ticket stays valid.
        :param wait: the longest to wait for it, in seconds.
        """
        from airflow_mlops_provider.core.models.lease import PromotionLease

        return PromotionLease(self.get_conn(), model_name, holder, try_number, ttl, wait)

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
