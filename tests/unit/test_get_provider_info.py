"""The provider registers with Airflow and declares its connection forms."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points, metadata
from pathlib import Path

import pytest

from airflow_mlops_provider.get_provider_info import get_provider_info


def test_package_name_matches_the_distribution() -> None:
    assert get_provider_info()["package-name"] == metadata("airflow-mlops-provider")["Name"]


def test_entry_point_is_registered() -> None:
    (ep,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "airflow-mlops-provider"]
    assert ep.load() is get_provider_info


def test_connection_forms_are_declarative_and_hide_secrets() -> None:
    types = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    assert set(types) == {"mlflow", "mlops_s3", "feast"}
    assert types["mlflow"]["conn-fields"]["token"]["schema"]["format"] == "password"
    assert types["mlflow"]["ui-field-behaviour"]["relabeling"]["host"] == "Tracking URI"
    assert "endpoint_url" in types["mlops_s3"]["conn-fields"]


@pytest.fixture(scope="module")
def airflow_cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def _airflow(env: dict[str, str], *args: str) -> str:
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run(
        [str(airflow), *args], env=env, capture_output=True, text=True, check=True, timeout=180
    ).stdout


def test_airflow_cli_lists_provider_and_hooks(airflow_cli_env: dict[str, str]) -> None:
    assert "airflow-mlops-provider" in _airflow(airflow_cli_env, "providers", "list", "-o", "plain")
    hooks = _airflow(airflow_cli_env, "providers", "hooks", "-o", "plain")
    assert "airflow_mlops_provider.hooks.mlflow.MlflowHook" in hooks
    assert "airflow_mlops_provider.hooks.storage.ObjectStorageHook" in hooks
    assert "airflow_mlops_provider.hooks.feast.FeastHook" in hooks
