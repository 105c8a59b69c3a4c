"""Kill training at its failpoints and retry it, as Airflow would after a dead worker or trainer.

Two points: ``training.run_created`` (the task process, right after it created the MLflow run: the worker
dies, its run stays RUNNING) and ``training.epoch_end`` (the trainer process, after an epoch was logged:
the task sees the trainer die and ends the run FAILED). The retry, a new try of the same task instance,
ends a run an earlier try left RUNNING as FAILED and trains in a new run. Afterwards the task instance has
exactly one FINISHED run, complete (every epoch's metrics, holdout metrics, the model), and no RUNNING one.
The hits are drawn from a seeded generator. The trainer is a fork of the task process, as on a preloading
worker, except in one case where it is a new interpreter (a task process that runs a native thread pool); the
task log says which.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import Tag
from airflow_mlops_provider.core.io.datasets import write_dataset
from demo.data import assign_splits, generate_batch
from tests.fixtures.task_server import TaskServer
from tests.reliability.killing import run_with_retries

pytestmark = pytest.mark.integration

SEED = 20261203
EPOCHS = 3
EXPERIMENT = "reliability_trainer_kills"
#: The task: one try of GPUTrainingOperator(backend=local), its try number counted in the state folder.
TASK = """
import json, os, pathlib, sys
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from demo.data import FEATURES_CATEGORICAL, FEATURES_NUMERIC, TARGET
from tests.fixtures.task_context import RuntimeTaskInstance

if os.environ["KILL_TEST_TRAINER"] == "interpreter":  # as in a task process that runs a native thread pool
    from airflow_mlops_provider.training import local_process
    local_process.native_threads = lambda: 1
tries = pathlib.Path(os.environ["AIRFLOW_MLOPS_FAILPOINT_STATE"], "tries")
try_number = int(tries.read_text()) + 1 if tries.exists() else 1
tries.write_text(str(try_number))
op = GPUTrainingOperator(
    task_id="train",
    dataset_uri=os.environ["KILL_TEST_DATASET"],
    target=TARGET,
    numeric_features=FEATURES_NUMERIC,
    categorical_features=FEATURES_CATEGORICAL,
    experiment_name=os.environ["KILL_TEST_EXPERIMENT"],
    hyperparameters={"epochs": int(os.environ["KILL_TEST_EPOCHS"]), "device": "cpu", "cpu_threads": 1},
    storage_conn_id=None,
    backend="local",
    namespace="unused",
)
ti = RuntimeTaskInstance("kills", os.environ["KILL_TEST_RUN_ID"], "train", try_number)
print("RESULT", json.dumps(op.execute({"ti": ti})))
"""


def _scenarios() -> list[tuple[str, int, str]]:
    """Six kills: the task process once after creating its run; the trainer at four epoch ends as a fork of the
    task process (on a preloading worker), and at one as a new interpreter (where a fork would be unsafe)."""
    rng = random.Random(SEED)
    epochs = [("training.epoch_end", rng.randint(1, EPOCHS), "fork") for _ in range(4)]
    return [("training.run_created", 1, "fork"), *epochs, ("training.epoch_end", rng.randint(1, EPOCHS), "interpreter")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = str(tmp_path_factory.mktemp("kills") / "train.parquet")
    write_dataset(assign_splits(generate_batch(800, "2026-01-01", days=5, seed=5)), uri)
    return uri


@pytest.mark.parametrize(
    ("point", "hit", "trainer"), _scenarios(), ids=[f"{p}-{h}-{t}-{i}" for i, (p, h, t) in enumerate(_scenarios())]
)
def test_a_killed_training_retries_into_exactly_one_complete_run(
    point: str,
    hit: int,
    trainer: str,
    dataset: str,
    mlflow_connection: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    task_server: TaskServer,
) -> None:
    run_id = f"kill_{request.node.callspec.id}"
    attempts = run_with_retries(
        task_server,
        TASK,
        point,
        hit,
        tmp_path / "state",
        retries=2,
        env={
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": mlflow_connection}),
            "MLFLOW_TRACKING_URI": mlflow_connection,
            "KILL_TEST_DATASET": dataset,
            "KILL_TEST_EXPERIMENT": EXPERIMENT,
            "KILL_TEST_EPOCHS": str(EPOCHS),
            "KILL_TEST_RUN_ID": run_id,
            "KILL_TEST_TRAINER": trainer,
        },
    )
    assert attempts.codes[-1] == 0, attempts.output[-3000:]
    how = "in a fork of the task process" if trainer == "fork" else "in a new interpreter"
    assert f"Training locally {how}" in attempts.output, attempts.output[-3000:]
    assert len(attempts.codes) == 2  # one try died, the retry trained
    if point == "training.run_created":
        assert attempts.killed == 1  # the task process itself died
    else:
        assert attempts.codes[0] == 1  # its trainer died; the task failed, as Airflow then retries it

    client = MlflowClient(mlflow_connection)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], f"tags.`{Tag.AIRFLOW_RUN_ID}` = '{run_id}'")
    statuses = sorted(run.info.status for run in runs)
    assert statuses == ["FAILED", "FINISHED"], statuses  # the killed try's run ended FAILED, not left RUNNING
    (finished,) = (run for run in runs if run.info.status == "FINISHED")
    (failed,) = (run for run in runs if run.info.status == "FAILED")
    assert (failed.data.tags[Tag.AIRFLOW_TRY_NUMBER], finished.data.tags[Tag.AIRFLOW_TRY_NUMBER]) == ("1", "2")
    assert Tag.MODEL_URI not in failed.data.tags
    logged_epochs = len(client.get_metric_history(failed.info.run_id, "val_loss"))
    assert logged_epochs == (0 if point == "training.run_created" else hit)  # killed where armed

    result = json.loads(attempts.output.split("RESULT ", 1)[1].splitlines()[0])
    assert result["mlflow_run_id"] == finished.info.run_id
    assert finished.data.tags[Tag.MODEL_URI] == result["model_uri"]
    for metric in ("train_loss", "val_loss", "val_roc_auc"):
        history = client.get_metric_history(finished.info.run_id, metric)
        assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), metric
    assert {"holdout_roc_auc", "best_epoch", "train_samples_per_second"} <= set(finished.data.metrics)
    model = client.get_logged_model(result["model_uri"].removeprefix("models:/"))
    assert model.source_run_id == finished.info.run_id
