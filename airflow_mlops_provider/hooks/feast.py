"""Feast hook: a feature repo path or an inline ``feature_store.yaml``, and the feature store they open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from feast import FeatureStore

CONNECTION_TYPE_INFO: dict[str, Any] = {
    "hook-class-name": "airflow_mlops_provider.hooks.feast.FeastHook",
    "connection-type": "feast",
    "hook-name": "Feast",
    "conn-fields": {
        "repo_path": {
            "label": "Feature repo path",
            "description": "Directory of the feature definitions (and feature_store.yaml, unless given inline), "
            "e.g. /opt/airflow/dags/feature_repo. Relative paths in the config resolve against it.",
            "schema": {"type": ["string", "null"]},
        },
        "feature_store_yaml": {
            "label": "feature_store.yaml (inline)",
            "description": "The store's config (project, provider, registry, offline_store, online_store), "
            "replacing the repo's feature_store.yaml; ${VAR} is expanded from the environment.",
            "schema": {"type": ["string", "null"], "format": "multiline"},
        },
    },
    # Airflow's form shows placeholders of the standard fields only: examples of extras are in descriptions.
    "ui-field-behaviour": {"hidden-fields": ["host", "schema", "login", "password", "port"]},
}


class FeastHook(BaseHook):
    """Opens the Feast feature store of a ``feast`` connection.

    The connection's extra holds ``repo_path`` (the feature repo) and/or ``feature_store_yaml`` (the config,
    inline). Feast is imported only by :meth:`get_conn`.

    :param feast_conn_id: the Airflow connection of type ``feast``.
    """

    conn_name_attr = "feast_conn_id"
    default_conn_name = "feast_default"
    conn_type = "feast"
    hook_name = "Feast"

    def __init__(self, feast_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.feast_conn_id = feast_conn_id
        self._store: FeatureStore | None = None

    def settings(self) -> tuple[str | None, str | None]:
        """``(repo_path, feature_store_yaml)`` from the connection's extra."""
        extra = self.get_connection(self.feast_conn_id).extra_dejson
        repo_path, yaml_text = extra.get("repo_path") or None, extra.get("feature_store_yaml") or None
        if not repo_path and not yaml_text:
            raise ValueError(f"Connection {self.feast_conn_id!r} needs repo_path or feature_store_yaml in its extra")
        return repo_path, yaml_text

    @property
    def repo_path(self) -> str | None:
        """The feature repo directory, if the connection names one."""
        return self.settings()[0]

    def get_conn(self) -> FeatureStore:
        """The (cached) ``feast.FeatureStore``."""
        if self._store is None:
            from airflow_mlops_provider.core.features.feast_repo import open_store

            self._store = open_store(*self.settings())
        return self._store

    def test_connection(self) -> tuple[bool, str]:
        """Open the store and list its feature views."""
        try:
            store = self.get_conn()
            views = [view.name for view in store.list_feature_views()]
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"Feast project {store.project!r}: {len(views)} feature view(s)"
