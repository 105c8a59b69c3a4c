"""The CT chain's operators against a real MLflow server, with real torch training in a local process.

One registry story, in order: a weak first model becomes champion; a model trained on shuffled labels is
rejected; a well-trained model beats the champion; registration is idempotent; rollback restores the old
champion.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import (
    CHAMPION,
    PREVIOUS_CHAMPION,
    REJECTED,
    PromotionRecord,
    RegistrationResult,
    RollbackResult,
    Tag,
    TrainingResult,
)
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.operators.registry import (
    PromoteModelOperator,
    RegisterModelOperator,
    RollbackModelOperator,
)
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from demo import data as demo_data

pytestmark = pytest.mark.integration
MODEL = "churn_it"
Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A clean training set, and the same rows with train/validation labels shuffled (holdout kept)."""
    root = tmp_path_factory.mktemp("data")
    frame = demo_data.assign_splits(demo_data.generate_batch(4000, "2026-01-01", days=7, seed=3))
    noisy = frame.copy()
    fit = noisy["split"] != "holdout"
    noisy.loc[fit, "churned"] = np.random.default_rng(0).permutation(noisy.loc[fit, "churned"].to_numpy())
    uris = {"clean": str(root / "clean.parquet"), "noisy": str(root / "noisy.parquet")}
    write_dataset(frame, uris["clean"])
    write_dataset(noisy, uris["noisy"])
    return uris


def _train(
    context: Context,
    run_id: str,
    dataset_uri: str,
    backend: str = "local",
    run_tags: dict[str, str] | None = None,
    **hyper: Any,
) -> dict[str, Any]:
    op = GPUTrainingOperator(
        task_id="train_model",
        dataset_uri=dataset_uri,
        target=demo_data.TARGET,
        numeric_features=demo_data.FEATURES_NUMERIC,
        categorical_features=demo_data.FEATURES_CATEGORICAL,
        experiment_name=MODEL,
        run_tags=run_tags,
        hyperparameters={"seed": 7, "batch_size": 128, **hyper},
        backend=backend,
        namespace="unused",
    )
    result: dict[str, Any] = op.execute(context("train_model", run_id))
    return result


def _register(context: Context, run_id: str, mlflow_run_id: str) -> dict[str, Any]:
    op = RegisterModelOperator(task_id="register_model", model_name=MODEL, mlflow_run_id=mlflow_run_id)
    result: dict[str, Any] = op.execute(context("register_model", run_id))
    return result


def _promote(context: Context, run_id: str, version: str, holdout_uri: str, **kw: Any) -> dict[str, Any]:
    op = PromoteModelOperator(
        task_id="promote_model",
        model_name=MODEL,
        version=version,
        holdout_uri=holdout_uri,
        target=demo_data.TARGET,
        metric="roc_auc",
        min_value=0.55,
        min_improvement=0.01,
        **kw,
    )
    result: dict[str, Any] = op.execute(context("promote_model", run_id))
    return result


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {alias: version for alias, version in client.get_registered_model(MODEL).aliases.items()}


def test_registry_story(mlflow_connection: str, datasets: dict[str, str], task_context: Context) -> None:
    client = MlflowClient(mlflow_connection)

    weak = _train(task_context, "run_1", datasets["clean"], epochs=1, learning_rate=3e-4)
    assert set(weak) == set(TrainingResult.__annotations__)
    assert weak["model_uri"] and weak["metrics"]["holdout_roc_auc"] > 0
    assert weak["dataset_digest"] and weak["dataset_uri"] == datasets["clean"]
    run = client.get_run(weak["mlflow_run_id"])
    assert run.info.experiment_id == weak["experiment_id"]
    assert run.data.tags[Tag.AIRFLOW_DAG_ID] == "ct_test" and run.data.tags[Tag.AIRFLOW_RUN_ID] == "run_1"
    assert run.data.tags[Tag.AIRFLOW_TASK_ID] == "train_model" and run.data.tags[Tag.AIRFLOW_TRY_NUMBER] == "1"
    v1 = _register(task_context, "run_1", weak["mlflow_run_id"])
    assert set(v1) == set(RegistrationResult.__annotations__)
    assert v1 == {
        "model_name": MODEL,
        "version": "1",
        "mlflow_run_id": weak["mlflow_run_id"],
        "model_uri": f"models:/{MODEL}/1",
        "created": True,
    }
    first = _promote(task_context, "run_1", "1", datasets["clean"])
    assert set(first) == set(PromotionRecord.__annotations__)
    assert first["promote"] and first["champion_version"] is None
    assert _aliases(client) == {CHAMPION: "1"}

    noise = _train(task_context, "run_2", datasets["noisy"], epochs=4, learning_rate=3e-3)
    v2 = _register(task_context, "run_2", noise["mlflow_run_id"])
    rejected = _promote(task_context, "run_2", v2["version"], datasets["clean"])
    assert not rejected["promote"], rejected["reason"]
    assert rejected["challenger_score"] < rejected["champion_score"]
    tags = client.get_model_version(MODEL, v2["version"]).tags
    assert tags[Tag.REJECTED] == rejected["reason"]
    assert tags[Tag.PROMOTION_DECISION] == REJECTED
    assert json.loads(tags[Tag.PROMOTION]) == rejected
    assert rejected["policy"] == {
        "metric": "roc_auc",
        "direction": "maximize",
        "min_value": 0.55,
        "min_improvement": 0.01,
    }
    assert _aliases(client) == {CHAMPION: "1"}

    lineage = {Tag.FEATURE_SERVICE: "churn_v1", Tag.DATA_WINDOW: "2026-01-01/2026-01-08"}
    good = _train(task_context, "run_3", datasets["clean"], run_tags=lineage, epochs=10, learning_rate=3e-3)
    v3 = _register(task_context, "run_3", good["mlflow_run_id"])
    won = _promote(task_context, "run_3", v3["version"], datasets["clean"])
    assert won["promote"], won["reason"]
    assert won["challenger_score"] > won["champion_score"] + 0.01
    assert won["holdout_rows"] == 600
    assert _aliases(client) == {CHAMPION: v3["version"], PREVIOUS_CHAMPION: "1"}
    version_tags = client.get_model_version(MODEL, v3["version"]).tags
    assert version_tags[Tag.DATASET_DIGEST] == good["dataset_digest"]
    assert version_tags[Tag.DATASET_URI] == datasets["clean"]
    assert version_tags[Tag.TRAINER_BACKEND] == "local"
    assert version_tags[Tag.FEATURE_SERVICE] == "churn_v1"
    assert version_tags[Tag.DATA_WINDOW] == "2026-01-01/2026-01-08"
    assert version_tags[Tag.AIRFLOW_DAG_ID] == "ct_test" and version_tags[Tag.AIRFLOW_RUN_ID] == "run_3"
    assert version_tags[Tag.REGISTERED_BY] == "ct_test/run_3/register_model"
    assert version_tags[Tag.MODEL_URI] == good["model_uri"]

    # A retried registration of the same run reuses the version; a retried promotion changes nothing.
    again = _register(task_context, "run_3", good["mlflow_run_id"])
    assert not again["created"] and again["version"] == v3["version"]
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 3
    assert _promote(task_context, "run_3", v3["version"], datasets["clean"]) == won
    assert _aliases(client) == {CHAMPION: v3["version"], PREVIOUS_CHAMPION: "1"}

    rollback = RollbackModelOperator(task_id="rollback", model_name=MODEL, reason="bad canary")
    restored = rollback.execute(task_context("rollback"))
    assert set(restored) == set(RollbackResult.__annotations__)
    assert restored == {"model_name": MODEL, "champion": "1", "demoted": v3["version"]}
    assert _aliases(client)[CHAMPION] == "1"
    assert client.get_model_version(MODEL, v3["version"]).tags[Tag.ROLLED_BACK] == "bad canary"


def test_rollback_without_a_previous_champion_fails(mlflow_connection: str, task_context: Context) -> None:
    MlflowClient(mlflow_connection).create_registered_model("never_promoted")
    rollback = RollbackModelOperator(task_id="rollback", model_name="never_promoted")
    with pytest.raises(AirflowFailException, match="never_promoted has no 'previous_champion' to roll back to"):
        rollback.execute(task_context("rollback"))


def test_retry_after_training_reuses_the_run(
    mlflow_connection: str, datasets: dict[str, str], task_context: Context
) -> None:
    first = _train(task_context, "retry_run", datasets["clean"], epochs=1)
    retried = _train(task_context, "retry_run", datasets["clean"], epochs=1)
    assert retried["mlflow_run_id"] == first["mlflow_run_id"]


def test_trainer_rejecting_input_fails_the_task_and_the_run(
    mlflow_connection: str, tmp_path: Path, task_context: Context
) -> None:
    bad = demo_data.assign_splits(demo_data.generate_batch(500, "2026-01-01", seed=1)).drop(columns=["plan"])
    uri = str(tmp_path / "bad.parquet")
    write_dataset(bad, uri)
    with pytest.raises(RuntimeError, match="rejected its input"):
        _train(task_context, "bad_run", uri, epochs=1)
    client = MlflowClient(mlflow_connection)
    experiment_id = client.get_experiment_by_name(MODEL).experiment_id
    (run,) = client.search_runs([experiment_id], f"tags.`{Tag.AIRFLOW_RUN_ID}` = 'bad_run'")
    assert run.info.status == "FAILED"


def test_kubernetes_backend_runs_the_same_entrypoint_with_the_pod_env(
    mlflow_connection: str, datasets: dict[str, str], task_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No API server exists here: the pod's container is run as a process with exactly the pod's env."""
    import subprocess

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def run_pod(self: GPUTrainingOperator, context: dict[str, Any]) -> None:
        (container,) = self.build_pod_request_obj(dry_run=True).spec.containers  # no XCom sidecar
        env = {e.name: e.value for e in container.env if e.value is not None}
        assert container.command[:2] == ["python", "-m"]
        subprocess.run([sys.executable, *container.command[1:], *container.args], env=env, check=True)

    monkeypatch.setattr(KubernetesPodOperator, "execute", run_pod)
    result = _train(task_context, "k8s_run", datasets["clean"], backend="kubernetes", epochs=1)
    run = MlflowClient(mlflow_connection).get_run(result["mlflow_run_id"])
    assert run.data.tags[Tag.TRAINER_BACKEND] == "kubernetes"
    assert run.info.status == "FINISHED" and result["model_uri"]


def test_on_kill_stops_the_local_trainer(
    mlflow_connection: str, datasets: dict[str, str], task_context: Context
) -> None:
    import threading
    import time

    op = GPUTrainingOperator(
        task_id="train_model",
        dataset_uri=datasets["clean"],
        target=demo_data.TARGET,
        numeric_features=demo_data.FEATURES_NUMERIC,
        categorical_features=demo_data.FEATURES_CATEGORICAL,
        experiment_name=MODEL,
        hyperparameters={"epochs": 500},
        backend="local",
        namespace="unused",
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(task_context("train_model", "killed_run"))
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while op._process is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert op._process is not None, "the trainer never started"
    time.sleep(2)
    op.on_kill()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert op._process.returncode is not None and op._process.returncode != 0
    assert errors and "exit code" in str(errors[0])
    client = MlflowClient(mlflow_connection)
    (run,) = client.search_runs(
        [client.get_experiment_by_name(MODEL).experiment_id], f"tags.`{Tag.AIRFLOW_RUN_ID}` = 'killed_run'"
    )
    assert run.info.status == "FAILED"
