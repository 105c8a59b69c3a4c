"""What every operator of the provider shares: connection ids, hooks, and results as dicts.

The connection ids and cached hooks come from :class:`~airflow_mlops_provider.hooks.connections.ConnectionsMixin`
(sensors, triggers and ``GPUTrainingOperator`` use it directly). Every operator returns a dict, once, with
``multiple_outputs`` on, so a downstream task takes one key with ``task.output["key"]``; the keys are
the result shapes of :mod:`airflow_mlops_provider.contracts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops_provider.hooks.connections import ConnectionsMixin
from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Context


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

    @staticmethod
    def push_result(context: Context, result: Mapping[str, Any]) -> None:
        """Record ``result`` as a returned result would be (the whole dict as the return value, and each key
        as its own XCom), before raising: a skip or a failed gate, so that every outcome is read alike.

        :param context: the task's context.
        :param result: the result the task would have returned.
        """
        from airflow.sdk.bases.xcom import BaseXCom

        ti = context["ti"]
        for key, value in result.items():
            ti.xcom_push(key=key, value=value)
        ti.xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=dict(result))
