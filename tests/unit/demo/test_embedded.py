"""The embedded profile's Airflow settings: the preloading executor, which ``airflow standalone`` keeps."""

from __future__ import annotations

from pathlib import Path

from airflow._shared.module_loading import import_string
from airflow.executors.local_executor import LocalExecutor

from demo.embedded import PRELOADING_EXECUTOR, AirflowStandalone
from demo.stack import AirflowSite
from tests.paths import DAGS


def site(tmp_path: Path) -> AirflowSite:
    return AirflowSite(
        home=tmp_path / "airflow",
        dags_folder=DAGS,
        api_host="127.0.0.1",
        api_port=8080,
        worker_log_port=8793,
        trigger_log_port=8794,
        mlflow_url="http://127.0.0.1:5000",
        data_dir=str(tmp_path / "data"),
        feast_config=AirflowStandalone.feast_config(DAGS, tmp_path / "store"),
        feature_data_uri=str(tmp_path / "offline"),
    )


def test_the_embedded_stack_runs_tasks_with_the_preloading_local_executor(tmp_path: Path) -> None:
    env = AirflowStandalone(site(tmp_path)).env()

    assert env["AIRFLOW__CORE__EXECUTOR"] == PRELOADING_EXECUTOR
    executor = import_string(PRELOADING_EXECUTOR)
    # `airflow standalone` replaces an executor that is not local with the LocalExecutor
    assert issubclass(executor, LocalExecutor) and executor.is_local


def test_tasks_wait_for_a_busy_api_server_and_unchanged_dag_files_are_not_reparsed_every_30_s(tmp_path: Path) -> None:
    env = site(tmp_path).env()

    assert float(env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"]) >= 30
    assert int(env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"]) >= 600
