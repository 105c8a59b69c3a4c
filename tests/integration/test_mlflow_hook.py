"""MlflowHook against a real MLflow server: connection, experiments, runs, and the alias compare-and-set."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, Tag
from airflow_mlops_provider.hooks.mlflow import CLIENT_ENV, AliasConflictError, MlflowHook
from tests.fixtures.mlflow_server import MlflowServer, free_port

pytestmark = pytest.mark.integration


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> MlflowHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "mlflow", **fields}))
    return MlflowHook(conn_id)


def test_env_carries_token_or_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    token = _connection(monkeypatch, "tok", host="https://mlflow.example:5000/", extra={"token": "t0k"})
    assert (
        token.env()
        == {
            "MLFLOW_TRACKING_URI": "https://mlflow.example:5000",
            "MLFLOW_TRACKING_TOKEN": "t0k",
        }
        | CLIENT_ENV
    )
    basic = _connection(monkeypatch, "basic", host="mlflow", port=5000, login="ann", password="pw")
    assert (
        basic.env()
        == {
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLFLOW_TRACKING_USERNAME": "ann",
            "MLFLOW_TRACKING_PASSWORD": "pw",
        }
        | CLIENT_ENV
    )
    assert set(basic.secret_env_keys()) >= {"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"}


def test_missing_host_or_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="has no host"):
        _connection(monkeypatch, "nohost", host="").env()
    with pytest.raises(ValueError, match="token auth but has no token"):
        _connection(monkeypatch, "notoken", host="http://x", extra={"auth_type": "token"}).env()


def test_test_connection(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = _connection(monkeypatch, "good", host=mlflow_server.tracking_uri).test_connection()
    assert ok and mlflow_server.tracking_uri in message
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = f"http://127.0.0.1:{free_port()}"
    ok, message = _connection(monkeypatch, "down", host=down).test_connection()
    assert not ok and down in message


def test_experiments_runs_and_versions(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _connection(monkeypatch, "reg", host=mlflow_server.tracking_uri)
    experiment = hook.get_or_create_experiment("hook-test")
    assert hook.get_or_create_experiment("hook-test") == experiment
    identity = {Tag.AIRFLOW_DAG_ID: "d", Tag.AIRFLOW_RUN_ID: "r"}
    mlflow_run_id = hook.create_run("hook-test", "r1", identity)
    assert hook.find_runs_by_tags("hook-test", identity) == [mlflow_run_id]
    assert hook.find_runs_by_tags("hook-test", {Tag.AIRFLOW_DAG_ID: "other"}) == []
    assert hook.find_runs_by_tags("no-such-experiment", {"a": "b"}) == []
    assert hook.find_version_by_run_id("hook-model", mlflow_run_id) is None
    assert hook.run_url(mlflow_run_id, experiment).endswith(f"/#/experiments/{experiment}/runs/{mlflow_run_id}")


def test_alias_compare_and_set(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _connection(monkeypatch, "alias", host=mlflow_server.tracking_uri)
    client = MlflowClient(mlflow_server.tracking_uri)
    client.create_registered_model("alias-model")
    mlflow_run_id = hook.create_run("alias-test", "r", {})
    for _ in range(3):
        client.create_model_version("alias-model", source=f"runs:/{mlflow_run_id}/m", run_id=mlflow_run_id)
    assert hook.get_alias_version("alias-model", CHAMPION) is None
    assert hook.get_alias_version("no-such-model", CHAMPION) is None
    hook.move_alias("alias-model", CHAMPION, "1", expected_current=None)
    hook.move_alias("alias-model", CHAMPION, "2", expected_current="1")
    hook.move_alias("alias-model", CHAMPION, "2", expected_current="1")  # already there: a retry is a no-op
    with pytest.raises(AliasConflictError, match="points at version 2, expected 1"):
        hook.move_alias("alias-model", CHAMPION, "3", expected_current="1")
    assert hook.get_alias_version("alias-model", CHAMPION) == "2"
    assert str(hook.find_version_by_run_id("alias-model", mlflow_run_id).version) == "1"  # type: ignore[union-attr]
