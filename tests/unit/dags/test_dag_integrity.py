"""Every example DAG parses, cheaply, without touching a connection or the network.

DAGs are parsed as Airflow's DAG processor parses a bundle: with the bundle's folder on ``sys.path``, so
that the DAG files import ``churn_common``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import BundleDagBag, DagBag

from airflow_mlops_provider.config import data_dir
from tests.paths import DAGS

HEAVY = [
    "mlflow",
    "torch",
    "feast",
    "great_expectations",
    "evidently",
    "pandas",
    "numpy",
    "scipy",
    "sklearn",
    "pyarrow",
]

# Runs in a fresh interpreter: connections and sockets raise, so any parse-time use of them is an error.
PARSE_SCRIPT = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("parse-time network or connection access")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.sdk.definitions.connection import Connection
Connection.get = classmethod(refuse)
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(sys.argv[1], bundle_path=Path(sys.argv[1]))
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "files": sorted({d.fileloc for d in bag.dags.values()}),
    "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules),
}))
"""


def parse_in_fresh_interpreter(dags: Path = DAGS) -> dict[str, object]:
    """Parse the DAGs folder ``dags`` in a fresh interpreter with connections and sockets refused.

    :param dags: the DAGs folder.
    """
    out = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(dags), json.dumps(HEAVY)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_dags_parse_without_errors_connections_or_heavy_imports() -> None:
    result = parse_in_fresh_interpreter()
    assert result["errors"] == {}
    assert "continuous_training" in result["dags"]  # type: ignore[operator]
    dag_files = {str(p) for p in DAGS.glob("*.py")} - {str(DAGS / "churn_common.py")}
    assert dag_files <= set(result["files"]), "every DAG file in dags/ defines a DAG"  # type: ignore[arg-type]
    assert result["heavy"] == [], f"heavy libraries imported at parse time: {result['heavy']}"


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def test_continuous_training_shape(bag: DagBag) -> None:
    from airflow_mlops_provider.operators.features import TrainingDatasetOperator

    dag = bag.dags["continuous_training"]
    assert set(dag.task_ids) == {
        "training_set",
        "validate_training_set",
        "train_model",
        "register_model",
        "promote_model",
        "approve_promotion",
        "apply_promotion",
    }
    training_set = dag.get_task("training_set")
    assert isinstance(training_set, TrainingDatasetOperator)
    assert training_set.spine_uri.endswith("/ingested/")
    assert "dag_run.run_after" in training_set.window_start and "params.window_days" in training_set.window_start
    assert dag.get_task("validate_training_set").upstream_task_ids == {"training_set"}
    assert dag.get_task("train_model").upstream_task_ids == {"training_set", "validate_training_set"}
    assert dag.get_task("promote_model").upstream_task_ids == {"register_model", "training_set"}
    assert dag.get_task("register_model").upstream_task_ids == {"train_model"}
    for task_id in ("training_set", "train_model", "register_model"):  # downstream tasks read outputs by key
        assert dag.get_task(task_id).multiple_outputs
    for name in ("feature_service", "window_days", "model_name", "epochs", "learning_rate", "batch_size", "metric"):
        param = dag.params.get_param(name)
        assert param.description, f"param {name} needs a description for the trigger form"
        assert "type" in param.schema, f"param {name} needs a type for the trigger form"
    assert dag.doc_md and dag.tags
    # The champion Asset through an alias: an event only when the task made a new champion.
    for task_id in ("promote_model", "apply_promotion"):
        assert [o.name for o in dag.get_task(task_id).outlets] == ["churn_model_champion__on_new_champion"]
    assert dag.get_task("promote_model").require_approval == "{{ params.require_approval }}"
    assert dag.params.get_param("require_approval").schema["type"] == "boolean"
    assert dag.params["require_approval"] is False
    assert dag.get_task("approve_promotion").upstream_task_ids == {"promote_model", "register_model"}
    assert dag.get_task("apply_promotion").upstream_task_ids == {"approve_promotion", "register_model"}
    assert {a.name for a in dag.timetable.asset_condition.objects} == {"churn_drift", "churn_quality_decay"}  # type: ignore[attr-defined]


def test_feature_ingestion_gates_each_batch_before_ingesting_it(bag: DagBag) -> None:
    from airflow_mlops_provider.operators.features import ArchiveBatchesOperator, FeatureIngestionOperator
    from airflow_mlops_provider.operators.validation import DataValidationOperator
    from airflow_mlops_provider.sensors.features import LandedBatchesSensor

    dag = bag.dags["feature_ingestion"]
    validate, ingest = dag.get_task("ingest_chunk.validate_batches"), dag.get_task("ingest_chunk.ingest_batches")
    assert isinstance(validate, DataValidationOperator) and isinstance(ingest, FeatureIngestionOperator)
    assert validate.on_failure == "quarantine"
    assert validate.suite_path == "expectations/churn_raw_batch.json"
    assert ingest.upstream_task_ids == {"ingest_chunk.validate_batches"}
    assert validate.upstream_task_ids == {"split_batches"}
    assert dag.get_task("split_batches").upstream_task_ids == {"wait_for_batches"}
    assert dag.params["ingestion_tasks"] == 4
    assert [o.uri for o in ingest.outlets] == ["feast://feature_views/customer_stats"]
    wait = dag.get_task("wait_for_batches")
    assert isinstance(wait, LandedBatchesSensor)
    assert (wait.mode, wait.soft_fail, wait.prefix) == ("reschedule", True, f"{data_dir()}/landing/")
    archive = dag.get_task("archive_batches")
    assert isinstance(archive, ArchiveBatchesOperator)
    assert archive.upstream_task_ids == {"wait_for_batches", "ingest_chunk.ingest_batches"}
    assert archive.trigger_rule == "all_done"  # archives good batches whatever happened to the others
    assert [o.uri for o in archive.outlets] == ["mlops://features/churn/refreshed"]
    assert archive.archive_uri == f"{data_dir()}/ingested/"
