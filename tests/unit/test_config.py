"""The [mlops] section: options read from Airflow's configuration, defaults, and the folders under data_dir."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_mlops_provider.config import (
    OPTIONS,
    DataFolder,
    data_dir,
    data_path,
    option,
    task_output_path,
)
from airflow_mlops_provider.get_provider_info import get_provider_info


def test_unset_options_take_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OPTIONS:
        monkeypatch.delenv(f"AIRFLOW__MLOPS__{name.upper()}", raising=False)
    assert option("training_backend") == "local"
    assert option("namespace") is None
    assert data_dir() == "/tmp/airflow-mlops"


def test_data_paths_follow_the_configured_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", "s3://lake/mlops/")
    assert data_dir() == "s3://lake/mlops"
    assert data_path(DataFolder.LANDING, "") == "s3://lake/mlops/landing/"
    assert data_path(DataFolder.DRIFT_STATE, "churn.json") == "s3://lake/mlops/drift_state/churn.json"


def test_task_output_paths_are_safe_segments_per_task_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", "/data")
    ti = SimpleNamespace(dag_id="ct", run_id="scheduled__2026-01-01T00:00:00+00:00", task_id="gate", map_index=3)
    path = task_output_path({"ti": ti}, DataFolder.VALIDATION)  # type: ignore[typeddict-item]
    assert path == "/data/validation/ct/scheduled__2026-01-01T00_00_00_00_00/gate.3"


def test_provider_info_declares_the_same_options() -> None:
    declared = get_provider_info()["config"]["mlops"]["options"]
    assert {name: entry["default"] for name, entry in declared.items()} == {
        name: opt.default for name, opt in OPTIONS.items()
    }
