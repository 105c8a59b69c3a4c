"""The MLflow hook without a server: filter-string quoting, client bounds and tracking URI checks."""

from __future__ import annotations

import json

import pytest
from mlflow.utils.search_utils import SearchModelVersionUtils, SearchUtils

from airflow_mlops_provider.core.models.lineage import filter_value
from airflow_mlops_provider.hooks.mlflow import CLIENT_ENV, MlflowHook


@pytest.mark.parametrize("value", ["churn", "O'Brien's model", 'say "hi"', "back\\slash", "a = 'b' or 1"])
def test_a_quoted_value_reads_back_as_itself_in_mlflows_parsers(value: str) -> None:
    parsed = SearchModelVersionUtils.parse_search_filter(f"name = {filter_value(value)} and run_id = 'r'")
    assert [(p["key"], p["value"]) for p in parsed] == [("name", value), ("run_id", "r")]
    runs = SearchUtils.parse_search_filter(f"tags.`k` = {filter_value(value)}")
    assert [(p["key"], p["value"]) for p in runs] == [("k", value)]


def test_a_value_with_both_quotes_is_refused() -> None:
    with pytest.raises(ValueError, match="holds both ' and \", so MLflow's search filters cannot name it"):
        filter_value('it\'s "x"')


def _hook(monkeypatch: pytest.MonkeyPatch, host: str) -> MlflowHook:
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_UNIT", json.dumps({"conn_type": "mlflow", "host": host}))
    return MlflowHook("mlflow_unit")


def test_every_client_is_bounded_and_quiet_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in CLIENT_ENV:
        monkeypatch.delenv(key, raising=False)
    env = _hook(monkeypatch, "http://mlflow:5000").env()
    assert {key: env[key] for key in CLIENT_ENV} == CLIENT_ENV
    worst_refused = sum(int(CLIENT_ENV["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]) * 2**i for i in range(3)) + 3
    assert worst_refused <= 10 and int(CLIENT_ENV["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 20
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    assert _hook(monkeypatch, "http://mlflow:5000").env()["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"


@pytest.mark.parametrize("host", ["mlflow server:5000", "ftp://mlflow", "s3://bucket"])
def test_a_host_that_is_no_tracking_uri_is_refused(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    with pytest.raises(ValueError, match=r"has tracking URI .*: expected a URI such as http://mlflow:5000"):
        _hook(monkeypatch, host).env()


@pytest.mark.parametrize(
    "host", ["https://mlflow.example", "databricks", "sqlite:///m.db", "postgresql+psycopg2://h/db"]
)
def test_tracking_uris_mlflow_opens_are_accepted(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    assert _hook(monkeypatch, host).env()["MLFLOW_TRACKING_URI"] == host
