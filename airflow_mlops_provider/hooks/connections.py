"""Connection ids and their hooks, for every operator, sensor and trigger of the provider.

As Airflow's own providers do (``AwsBaseOperator``), the classes that talk to a service carry its
connection id and build its hook once, on first use, as a cached property.
"""

from __future__ import annotations

from functools import cached_property

from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook


class ConnectionsMixin:
    """The ``mlflow``, ``mlops_s3`` and ``feast`` connection ids, and their hooks built once per task.

    Each operator uses the connections it needs; the others are ignored. The storage rule is the hook's:
    ``mlops_s3_default`` when that connection exists, else the environment (``AWS_*``); ``None`` always
    means the environment.
    """

    mlflow_conn_id: str
    storage_conn_id: str | None
    feast_conn_id: str

    def _set_connections(
        self,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
        feast_conn_id: str = FeastHook.default_conn_name,
    ) -> None:
        self.mlflow_conn_id = mlflow_conn_id
        self.storage_conn_id = storage_conn_id
        self.feast_conn_id = feast_conn_id

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        """The hook of ``mlflow_conn_id``."""
        return MlflowHook(self.mlflow_conn_id)

    @cached_property
    def storage_hook(self) -> ObjectStorageHook:
        """The hook of ``storage_conn_id``."""
        return ObjectStorageHook(self.storage_conn_id)

    @cached_property
    def feast_hook(self) -> FeastHook:
        """The hook of ``feast_conn_id``."""
        return FeastHook(self.feast_conn_id)
