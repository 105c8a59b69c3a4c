"""What every operator of the provider shares: connection ids, hooks, and results as dicts.

As Airflow's own providers do (``AwsBaseOperator``), one base carries the connection ids and builds each
hook once, on first use, as a cached property. Every operator returns a dict, once, with
``multiple_outputs`` on, so a downstream task takes one key with ``task.output["key"]``; the keys are
the result shapes of :mod:`airflow_mlops_provider.contracts`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Context


class ConnectionsMixin:
    """The ``mlflow``, ``mlops_s3`` and ``feast`` connection ids, and their hooks built once per task.

    Each operator uses the connections it needs; the others are ignored. The storage rule is the hook's:
    ``mlops_s3_default`` when that connection exists, else the environment (``AWS_*``); ``None`` always
    means the environment.
    """

    mlflow_conn_id: str
    storage_conn_id: str | None
    feast_conn_id: str

    def _set_connections(self, mlflow_conn_id: str, storage_conn_id: str | None, feast_conn_id: str) -> None:
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

    @staticmethod
    def push_result(context: Context, result: Mapping[str, Any]) -> None:
        """Record ``result`` as the task's return value before raising (a skip or a failed gate), so that
        every outcome is read from the same XCom.

        :param context: the task's context.
        :param result: the result the task would have returned.
        """
        from airflow.sdk.bases.xcom import BaseXCom

        context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=dict(result))


class MlopsBaseOperator(ConnectionsMixin, BaseOperator):
    """Base of the provider's operators.

    :param mlflow_conn_id: the ``mlflow`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` URIs; ``None``: the environment.
    :param feast_conn_id: the ``feast`` connection.
    """

    def __init__(
        self,
        *,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
        feast_conn_id: str = FeastHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self._set_connections(mlflow_conn_id, storage_conn_id, feast_conn_id)
