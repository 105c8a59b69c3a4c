"""Hook for S3-compatible artifact storage (MinIO, AWS S3, ...) or plain local storage."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from airflow_mlops_provider.config import storage_roots
from airflow_mlops_provider.core.io.storage import SECRET_ENV_KEYS, ObjectStore, StorageConfig

#: The provider-info ``connection-types`` entry for ``mlops_s3`` (declarative connection form).
CONNECTION_TYPE_INFO: dict[str, Any] = {
    "hook-class-name": "airflow_mlops_provider.hooks.storage.ObjectStorageHook",
    "connection-type": "mlops_s3",
    "hook-name": "S3-compatible storage (MLOps)",
    "conn-fields": {
        "endpoint_url": {
            "label": "Endpoint URL",
            "description": "S3-compatible endpoint, e.g. http://minio:9000; leave empty for AWS S3.",
            "schema": {"type": ["string", "null"]},
        },
        "region_name": {
            "label": "Region",
            "description": "e.g. us-east-1; leave empty for the default.",
            "schema": {"type": ["string", "null"]},
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "host"],
        "relabeling": {"login": "Access key ID", "password": "Secret access key"},
    },
}


class ObjectStorageHook(BaseHook):
    """Give access to S3-compatible storage configured by an ``mlops_s3`` connection.

    The connection's login is the access key id, its password the secret key, and its extra holds
    ``endpoint_url`` and ``region_name``. Missing credentials fall back to boto3's own lookup. Every URI is
    confined to ``[mlops] data_dir`` and ``[mlops] allowed_roots`` when the latter is set.

    :param storage_conn_id: the connection id. The default, ``mlops_s3_default``, falls back to the
        ``AWS_*`` environment when no such connection exists; ``None`` always takes the environment (and
        is enough for local paths). Operators, sensors and triggers follow the same rule.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = "mlops_s3_default"
    conn_type = "mlops_s3"
    hook_name = "S3-compatible storage (MLOps)"

    def __init__(self, storage_conn_id: str | None = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        self._config: StorageConfig | None = None
        self._store: ObjectStore | None = None

    def get_config(self) -> StorageConfig:
        """The storage settings from the connection, or from the environment without one, with the data
        roots of ``[mlops]`` (read once)."""
        if self._config is None:
            self._config = replace(self._read_config(), roots=storage_roots())
        return self._config

    def _read_config(self) -> StorageConfig:
        if self.storage_conn_id is None:
            return self._config_from_env()
        try:
            conn = self.get_connection(self.storage_conn_id)
        except AirflowNotFoundException:
            if self.storage_conn_id != self.default_conn_name:
                raise
            self.log.info("No %r connection: storage settings come from the environment", self.storage_conn_id)
            return self._config_from_env()
        extra = conn.extra_dejson
        return StorageConfig(
            endpoint_url=extra.get("endpoint_url") or None,
            access_key_id=conn.login or None,
            secret_access_key=conn.password or None,
            region_name=extra.get("region_name") or None,
        )

    @staticmethod
    def _config_from_env() -> StorageConfig:
        config = StorageConfig.from_env()
        if config.secret_access_key:
            mask_secret(config.secret_access_key)
        return config

    def get_conn(self) -> ObjectStore:
        """Return the (cached) :class:`ObjectStore` for this connection."""
        if self._store is None:
            self._store = ObjectStore(self.get_config())
        return self._store

    def env(self) -> dict[str, str]:
        """Return the ``AWS_*`` / ``MLFLOW_S3_ENDPOINT_URL`` environment for a subprocess or pod."""
        return self.get_config().to_env()

    def secret_env_keys(self) -> list[str]:
        """Return the keys of :meth:`env` that must be passed as secrets."""
        return [key for key in self.env() if key in SECRET_ENV_KEYS]

    def test_connection(self) -> tuple[bool, str]:
        """List the buckets to check the endpoint and the credentials."""
        try:
            store = ObjectStore(self.get_config())
            buckets = store.list_buckets()
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"Connected to {store.config.endpoint_display}; {len(buckets)} bucket(s) visible."
