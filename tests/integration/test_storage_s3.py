"""ObjectStore and ObjectStorageHook against a real S3-compatible server (moto) and local disk."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset, write_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore, StorageConfig
from airflow_mlops_provider.hooks.storage import CONNECTION_TYPE_INFO, ObjectStorageHook
from tests.fixtures.s3_server import S3Server, free_port, set_storage_connection

pytestmark = pytest.mark.integration

CONN_ID = "mlops_s3_test"
SECRET = "s3cr3t-that-must-never-leak-9f8e7d"


@pytest.fixture
def secret_config(s3_server: S3Server) -> StorageConfig:
    """Config for the permissive server with a recognisable secret (moto accepts any key pair)."""
    return replace(s3_server.config, secret_access_key=SECRET)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


# --- ObjectStore contract (local and s3) -----------------------------------------------------------


def test_write_read_exists_delete(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    uri = f"{root}/a/b/object.bin"
    assert not store.exists(uri)
    store.write_bytes(uri, b"hello")
    assert store.exists(uri)
    assert store.read_bytes(uri) == b"hello"
    store.write_bytes(uri, b"replaced")
    assert store.read_bytes(uri) == b"replaced"
    store.delete(uri)
    assert not store.exists(uri)


def test_list_by_prefix(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    for name in ("a/1", "a/2", "ab/3", "b/4"):
        store.write_bytes(f"{root}/{name}", name.encode())
    assert store.list(f"{root}/a/") == [f"{root}/a/1", f"{root}/a/2"]
    assert store.list(f"{root}/a") == [f"{root}/a/1", f"{root}/a/2", f"{root}/ab/3"]
    assert len(store.list(f"{root}/")) == 4
    assert store.list(f"{root}/zzz/") == []


def test_missing_object_raises_file_not_found_naming_the_uri(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    uri = f"{root}/missing/key.parquet"
    with pytest.raises(FileNotFoundError, match=re.escape(uri)):
        store.read_bytes(uri)
    with pytest.raises(FileNotFoundError, match=re.escape(uri)):
        store.delete(uri)
    store.delete(uri, missing_ok=True)


def test_dataset_round_trip(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    df = pd.DataFrame(
        {
            "customer_id": pd.Series([1, 2, 3], dtype="int64"),
            "event_timestamp": pd.date_range("2024-05-01", periods=3, tz="UTC"),
            "plan": pd.Categorical(["basic", "premium", "basic"]),
            "churned": [0, 1, 0],
        }
    )
    uri = f"{root}/datasets/train.parquet"
    digest = write_dataset(df, uri, store)
    back = read_dataset(uri, store)
    pd.testing.assert_frame_equal(back, df)
    assert dataset_digest(back) == digest


# --- S3-specific errors ------------------------------------------------------------------------------


def test_missing_bucket_raises_file_not_found(s3_server: S3Server) -> None:
    store = ObjectStore(s3_server.config)
    uri = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/key"
    with pytest.raises(FileNotFoundError, match="no such bucket") as info:
        store.read_bytes(uri)
    assert uri in str(info.value)
    with pytest.raises(FileNotFoundError):
        store.list(f"{uri}/")
    with pytest.raises(FileNotFoundError):
        store.write_bytes(uri, b"x")


def test_unreachable_endpoint_raises_connection_error_fast() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = ObjectStore(StorageConfig(endpoint, "testing", SECRET, "us-east-1"))
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach S3 endpoint {endpoint}") as info:
        store.read_bytes("s3://bucket/key")
    assert time.monotonic() - started < 10
    assert SECRET not in str(info.value)


def test_non_s3_uri_never_creates_a_client(tmp_path: Path) -> None:
    store = ObjectStore(StorageConfig(endpoint_url=f"http://127.0.0.1:{free_port()}"))
    store.write_bytes(str(tmp_path / "x"), b"1")
    assert store.read_bytes(str(tmp_path / "x")) == b"1"
    assert store._client is None


# --- credentials: a moto server that really enforces IAM auth -----------------------------------------


def test_valid_credentials_work_on_auth_server(s3_auth_server: S3Server) -> None:
    store = ObjectStore(s3_auth_server.config)
    store.client.create_bucket(Bucket="auth-ok")
    store.write_bytes("s3://auth-ok/k", b"v")
    assert store.read_bytes("s3://auth-ok/k") == b"v"


@pytest.mark.parametrize(
    ("access_key_id", "code"),
    [(None, "SignatureDoesNotMatch"), ("AKIAUNKNOWN000000000", "InvalidAccessKeyId")],
    ids=["wrong-secret", "unknown-key-id"],
)
def test_bad_credentials_raise_permission_error(
    s3_auth_server: S3Server, debug_logs: pytest.LogCaptureFixture, access_key_id: str | None, code: str
) -> None:
    good = s3_auth_server.config
    bad = replace(good, access_key_id=access_key_id or good.access_key_id, secret_access_key=SECRET)
    store = ObjectStore(bad)
    with pytest.raises(PermissionError, match=code) as info:
        store.read_bytes("s3://auth-ok/k")
    with pytest.raises(PermissionError):
        store.exists("s3://auth-ok/k")
    assert SECRET not in str(info.value)
    assert SECRET not in debug_logs.text


def test_hook_test_connection_reports_bad_credentials(
    s3_auth_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_storage_connection(monkeypatch, CONN_ID, s3_auth_server.config)
    assert ObjectStorageHook(CONN_ID).test_connection()[0] is True
    set_storage_connection(monkeypatch, CONN_ID, replace(s3_auth_server.config, secret_access_key=SECRET))
    ok, message = ObjectStorageHook(CONN_ID).test_connection()
    assert ok is False
    assert "PermissionError" in message
    assert SECRET not in message


# --- the hook -----------------------------------------------------------------------------------------


def test_hook_reads_the_connection_from_an_env_var(
    secret_config: StorageConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_storage_connection(monkeypatch, CONN_ID, secret_config)
    hook = ObjectStorageHook(storage_conn_id=CONN_ID)
    assert hook.get_config() == secret_config
    assert hook.env() == {
        "AWS_ENDPOINT_URL": secret_config.endpoint_url,
        "MLFLOW_S3_ENDPOINT_URL": secret_config.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    assert hook.secret_env_keys() == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert StorageConfig.from_env(hook.env()) == secret_config


def test_hook_round_trips_a_dataset(
    secret_config: StorageConfig, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_storage_connection(monkeypatch, CONN_ID, secret_config)
    store = ObjectStorageHook(CONN_ID).get_conn()
    df = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    uri = f"{s3_bucket}/features/part-0001.parquet"
    digest = write_dataset(df, uri, store)
    assert store.list(f"{s3_bucket}/features/") == [uri]
    assert dataset_digest(read_dataset(uri, store)) == digest


def test_hook_test_connection_ok_and_unreachable(
    secret_config: StorageConfig, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_storage_connection(monkeypatch, CONN_ID, secret_config)
    ok, message = ObjectStorageHook(CONN_ID).test_connection()
    assert ok is True, message
    assert f"Connected to {secret_config.endpoint_url}" in message
    endpoint = f"http://127.0.0.1:{free_port()}"
    set_storage_connection(monkeypatch, CONN_ID, replace(secret_config, endpoint_url=endpoint))
    ok, message = ObjectStorageHook(CONN_ID).test_connection()
    assert ok is False
    assert message.startswith("ConnectionError") and endpoint in message


def test_hook_without_connection_uses_the_environment(
    secret_config: StorageConfig, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    for key, value in secret_config.to_env().items():
        monkeypatch.setenv(key, value)
    hook = ObjectStorageHook(storage_conn_id=None)
    assert hook.get_config() == secret_config
    hook.get_conn().write_bytes(f"{s3_bucket}/k", b"v")
    assert ObjectStore(secret_config).read_bytes(f"{s3_bucket}/k") == b"v"


# --- the storage rule: the default connection, else the environment; a named connection must exist -----


@pytest.fixture
def env_config(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> StorageConfig:
    """Storage settings in the ``AWS_*`` environment, and no ``mlops_s3_default`` connection."""
    config = replace(s3_server.config, access_key_id="from-env")
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_S3_DEFAULT", raising=False)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    for key, value in config.to_env().items():
        monkeypatch.setenv(key, value)
    return config


def test_the_default_connection_when_absent_is_the_environment(env_config: StorageConfig, s3_bucket: str) -> None:
    hook = ObjectStorageHook()
    assert hook.storage_conn_id == "mlops_s3_default"
    assert hook.get_config() == env_config
    hook.get_conn().write_bytes(f"{s3_bucket}/k", b"v")
    assert ObjectStore(env_config).read_bytes(f"{s3_bucket}/k") == b"v"


def test_a_named_connection_that_does_not_exist_is_an_error(env_config: StorageConfig) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    with pytest.raises(AirflowNotFoundException, match="mlops_s3_missing"):
        ObjectStorageHook("mlops_s3_missing").get_config()


@pytest.mark.parametrize("conn_id", ["mlops_s3_default", CONN_ID])
def test_an_existing_connection_is_used_over_the_environment(
    env_config: StorageConfig, secret_config: StorageConfig, monkeypatch: pytest.MonkeyPatch, conn_id: str
) -> None:
    set_storage_connection(monkeypatch, conn_id, secret_config)
    assert ObjectStorageHook(conn_id).get_config() == secret_config != env_config


def _storage_conn_id_default(cls: type) -> object:
    """The default of ``storage_conn_id`` in the first ``__init__`` of ``cls``'s MRO that takes it."""
    import inspect

    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        parameter = inspect.signature(init).parameters.get("storage_conn_id") if init else None
        if parameter is not None:
            return parameter.default
    return inspect.Parameter.empty


def test_operators_sensors_and_triggers_follow_the_rule_by_default() -> None:
    """Every class of the provider that takes a ``storage_conn_id`` defaults it to the hook's default."""
    import importlib
    import inspect
    import pkgutil

    import airflow_mlops_provider

    defaults = {}
    for package in ("operators", "sensors", "triggers"):
        module_path = f"{airflow_mlops_provider.__name__}.{package}"
        for info in pkgutil.iter_modules(importlib.import_module(module_path).__path__):
            module = importlib.import_module(f"{module_path}.{info.name}")
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__:
                    defaults[name] = _storage_conn_id_default(cls)
    defaults = {name: default for name, default in defaults.items() if default is not inspect.Parameter.empty}
    assert {"FeatureIngestionOperator", "DataValidationOperator", "FeatureFreshnessTrigger"} <= set(defaults)
    assert {name: default for name, default in defaults.items() if default != "mlops_s3_default"} == {}


# --- secrets stay out of reprs and logs -----------------------------------------------------------------


def test_secret_never_in_repr_messages_or_logs(
    secret_config: StorageConfig,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    set_storage_connection(monkeypatch, CONN_ID, secret_config)
    hook = ObjectStorageHook(CONN_ID)
    store = hook.get_conn()
    store.write_bytes(f"{s3_bucket}/a", b"1")
    store.read_bytes(f"{s3_bucket}/a")
    store.list(f"{s3_bucket}/")
    store.delete(f"{s3_bucket}/a")
    with pytest.raises(FileNotFoundError) as info:
        store.read_bytes(f"{s3_bucket}/a")
    hook.test_connection()
    assert any(r.name == "airflow_mlops_provider.core.io.storage" for r in debug_logs.records)
    for text in (repr(secret_config), str(secret_config), repr(store), str(info.value), debug_logs.text):
        assert SECRET not in text


def test_endpoint_user_info_is_not_shown() -> None:
    config = StorageConfig(endpoint_url=f"http://user:{SECRET}@minio:9000/")
    assert config.endpoint_display == "http://minio:9000/"


# --- connection form metadata ---------------------------------------------------------------------------


def test_connection_type_info_matches_the_provider_schema() -> None:
    import airflow

    schema_path = Path(airflow.__file__).with_name("provider.yaml.schema.json")
    item_schema = json.loads(schema_path.read_text())["properties"]["connection-types"]["items"]
    jsonschema.validate(CONNECTION_TYPE_INFO, item_schema)
    assert CONNECTION_TYPE_INFO["connection-type"] == ObjectStorageHook.conn_type
    assert CONNECTION_TYPE_INFO["hook-name"] == ObjectStorageHook.hook_name
    module, _, name = CONNECTION_TYPE_INFO["hook-class-name"].rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is ObjectStorageHook


@pytest.mark.parametrize(
    ("name", "content_type"), [("report.html", "text/html"), ("part.parquet", "application/octet-stream")]
)
def test_objects_carry_the_content_type_browsers_need(
    s3_server: S3Server, s3_bucket: str, name: str, content_type: str
) -> None:
    store = ObjectStore(s3_server.config)
    uri = f"{s3_bucket}/types/{name}"
    store.write_bytes(uri, b"<html></html>")
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert store.client.head_object(Bucket=bucket, Key=key)["ContentType"] == content_type
