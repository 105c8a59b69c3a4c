"""The continuous_training DAG under ``dag.test()``: a training set that fails its gate trains nothing.

Real components throughout: a Feast repo holding the ingested features, the GX gate, and the session's
``mlflow server``. The DAG runs in a fresh interpreter with its own Airflow home and SQLite database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.operators.features import FeatureIngestionOperator
from demo import data as demo_data
from tests.paths import REPO

pytestmark = pytest.mark.integration
MODEL = "gate_test"

RUN_DAG = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
dag = BundleDagBag(sys.argv[1], bundle_path=Path(sys.argv[1])).dags["continuous_training"]
run = dag.test(run_conf=json.loads(sys.argv[2]))
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    query = XComModel.get_many(run_id=run.run_id, key="return_value", task_ids="validate_training_set")
    result = XComModel.deserialize_value(session.scalars(query).one())
print("STATES=" + json.dumps({ti.task_id: ti.state for ti in run.get_task_instances()}))
print("RESULT=" + json.dumps(result))
"""


def run_in_airflow(home: Path, data_dir: Path, script: str, *args: str) -> tuple[str, str]:
    """Migrate a fresh SQLite metadata DB in ``home``, then run ``script`` (e.g. a ``dag.test()``) in a fresh
    interpreter against it, with the repository's DAGs folder and the local training backend.

    Returns the script's stdout, and its stdout and stderr together (for messages).

    :param home: the Airflow home to create.
    :param data_dir: ``[mlops] data_dir``.
    :param script: the Python source to run.
    :param args: its arguments.
    """
    env = os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__MLOPS__DATA_DIR": str(data_dir),
        "AIRFLOW__MLOPS__TRAINING_BACKEND": "local",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=400)
    return out.stdout, out.stdout + out.stderr


def run_continuous_training(
    home: Path, data_dir: Path, conf: dict[str, object]
) -> tuple[dict[str, str], dict[str, Any], str]:
    """``dag.test()`` the CT DAG in a fresh Airflow home.

    Returns the task states, the gate's result (its return value, recorded before it failed), and the output.

    :param home: the Airflow home to create.
    :param data_dir: ``[mlops] data_dir``.
    :param conf: the run's conf.
    """
    stdout, output = run_in_airflow(home, data_dir, RUN_DAG, str(REPO / "dags"), json.dumps(conf))
    printed = {line[:6]: line[7:] for line in stdout.splitlines() if line[:7] in ("STATES=", "RESULT=")}
    assert set(printed) == {"STATES", "RESULT"}, output[-20000:]
    return json.loads(printed["STATES"]), json.loads(printed["RESULT"]), output


def test_a_training_set_failing_its_gate_stops_the_dag_before_training(
    tmp_path: Path,
    feast_repo: Path,
    mlflow_connection: str,
    task_context: Callable[[str], dict[str, Any]],
) -> None:
    data_dir = tmp_path / "data"
    # 400 rows from the last three days: well-formed, so Feast serves them, but under the suite's 1000-row floor.
    start = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=3)
    batch = str(data_dir / "ingested" / "small.parquet")
    write_dataset(demo_data.generate_batch(400, start, days=3, seed=7), batch)
    ingest = FeatureIngestionOperator(task_id="ingest", feature_view="customer_stats", batch_uri=batch, outlets=[])
    ingest.execute(task_context("ingest"))  # type: ignore[arg-type]

    states, result, output = run_continuous_training(tmp_path / "airflow", data_dir, {"model_name": MODEL})

    assert states["training_set"] == "success", output[-20000:]
    assert states["validate_training_set"] == "failed", output[-20000:]
    assert {states[t] for t in ("train_model", "register_model", "promote_model")} == {"upstream_failed"}
    failures = [failure["expectation_type"] for failure in result["failures"]]
    assert failures == ["expect_table_row_count_to_be_between"], result  # the gate says what failed
    assert "row count 400 is outside [1000, inf)" in result["message"], result
    assert list((data_dir / "validation" / "continuous_training").rglob("validate_training_set.html"))
    client = MlflowClient(mlflow_connection)
    assert client.search_model_versions(f"name = '{MODEL}'") == []
    experiment = client.get_experiment_by_name(MODEL)
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []
