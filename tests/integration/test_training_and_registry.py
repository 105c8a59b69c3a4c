"""The CT chain's operators against a real MLflow server, with real torch training in a local process.

One registry story, in order: a weak first model becomes champion; a model trained on shuffled labels is
rejected; a well-trained model beats the champion; registration is idempotent; rollback restores the old
champion. Then split policies: a dataset without a split column is split by the trainer, and promotion
scores both models on exactly the rows it held out, or refuses to score at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import (
    APPROVAL_KEYS,
    CHAMPION,
    PREVIOUS_CHAMPION,
    REJECTED,
    PromotionRecord,
    RegistrationResult,
    RollbackResult,
    RunParam,
    Split,
    Tag,
    TrainingResult,
)
from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset, write_dataset
from airflow_mlops_provider.core.io.splits import SplitPolicy
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
    """A clean training set, the same rows with train/validation labels shuffled (holdout kept), and the
    clean rows without their split column (``raw``)."""
    root = tmp_path_factory.mktemp("data")
    frame = demo_data.assign_splits(demo_data.generate_batch(4000, "2026-01-01", days=7, seed=3))
    noisy = frame.copy()
    fit = noisy["split"] != "holdout"
    noisy.loc[fit, "churned"] = np.random.default_rng(0).permutation(noisy.loc[fit, "churned"].to_numpy())
    uris = {name: str(root / f"{name}.parquet") for name in ("clean", "noisy", "raw")}
    write_dataset(frame, uris["clean"])
    write_dataset(noisy, uris["noisy"])
    write_dataset(frame.drop(columns="split"), uris["raw"])
    return uris


def _train(
    context: Context,
    run_id: str,
    dataset_uri: str,
    backend: str = "local",
    run_tags: dict[str, str] | None = None,
    split: SplitPolicy | None = None,
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
        split=split,
        hyperparameters={"seed": 7, "batch_size": 128, **hyper},
        backend=backend,
        namespace="unused",
    )
    result: dict[str, Any] = op.execute(context("train_model", run_id))
    return result


def _register(context: Context, run_id: str, mlflow_run_id: str, model: str = MODEL) -> dict[str, Any]:
    op = RegisterModelOperator(task_id="register_model", model_name=model, mlflow_run_id=mlflow_run_id)
    result: dict[str, Any] = op.execute(context("register_model", run_id))
    return result


def _promote(context: Context, run_id: str, version: str, holdout_uri: str, **kw: Any) -> dict[str, Any]:
    settings = {
        "model_name": MODEL,
        "target": demo_data.TARGET,
        "metric": "roc_auc",
        "min_value": 0.55,
        "min_improvement": 0.01,
        **kw,
    }
    op = PromoteModelOperator(task_id="promote_model", version=version, holdout_uri=holdout_uri, **settings)
    result: dict[str, Any] = op.execute(context("promote_model", run_id))
    return result


def _aliases(client: MlflowClient, model: str = MODEL) -> dict[str, str]:
    return {alias: version for alias, version in client.get_registered_model(model).aliases.items()}


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
    # No split argument: the dataset's split column, recorded as the run's policy with its holdout's digest.
    clean = read_dataset(datasets["clean"])
    holdout_digest = dataset_digest(clean[clean["split"] == "holdout"].reset_index(drop=True))
    assert run.data.params[RunParam.SPLIT_POLICY] == SplitPolicy.existing().to_json()
    assert run.data.tags[Tag.HOLDOUT_DIGEST] == holdout_digest
    first = _promote(task_context, "run_1", "1", datasets["clean"])
    assert set(first) == set(PromotionRecord.__annotations__) - set(APPROVAL_KEYS)  # no approval asked
    assert first["promote"] and first["champion_version"] is None
    assert first["holdout_digest"] == holdout_digest
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
    with pytest.raises(AirflowFailException, match="rejected its input"):  # bad input: no retry
        _train(task_context, "bad_run", uri, epochs=1)
    client = MlflowClient(mlflow_connection)
    experiment_id = client.get_experiment_by_name(MODEL).experiment_id
    (run,) = client.search_runs([experiment_id], f"tags.`{Tag.AIRFLOW_RUN_ID}` = 'bad_run'")
    assert run.info.status == "FAILED"


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


# --- split policies: the holdout promotion scores on is the trainer's -----------------------------------

POLICY_MODEL = "churn_policy_it"


def test_a_split_policy_trains_registers_and_promotes_on_the_trainers_holdout(
    mlflow_connection: str, datasets: dict[str, str], task_context: Context
) -> None:
    client = MlflowClient(mlflow_connection)
    policy = SplitPolicy.random_by(seed=0, stratify=True)
    raw = read_dataset(datasets["raw"])
    assert "split" not in raw.columns
    expected = policy.partition(raw, demo_data.TARGET)[Split.HOLDOUT]
    assert len(expected) == 600
    assert expected[demo_data.TARGET].mean() == pytest.approx(raw[demo_data.TARGET].mean(), abs=0.005)

    first = _train(task_context, "policy_1", datasets["raw"], split=policy, epochs=1, learning_rate=3e-4)
    run = client.get_run(first["mlflow_run_id"])
    assert run.data.params[RunParam.SPLIT_POLICY] == run.data.tags[Tag.SPLIT_POLICY] == policy.to_json()
    assert run.data.tags[Tag.HOLDOUT_DIGEST] == dataset_digest(expected)
    assert (run.data.params["rows_train"], run.data.params["rows_holdout"]) == ("2800", "600")
    v1 = _register(task_context, "policy_1", first["mlflow_run_id"], POLICY_MODEL)
    version_tags = client.get_model_version(POLICY_MODEL, v1["version"]).tags
    assert version_tags[Tag.SPLIT_POLICY] == policy.to_json()
    assert version_tags[Tag.HOLDOUT_DIGEST] == dataset_digest(expected)

    promoted = _promote(task_context, "policy_1", v1["version"], datasets["raw"], model_name=POLICY_MODEL)
    assert promoted["promote"], promoted["reason"]
    assert (promoted["holdout_digest"], promoted["holdout_rows"]) == (dataset_digest(expected), 600)
    # The rows scored are the rows the trainer held out: the registered model scores what the trainer measured.
    assert promoted["challenger_score"] == pytest.approx(run.data.metrics["holdout_roc_auc"], abs=1e-4)
    assert _aliases(client, POLICY_MODEL) == {CHAMPION: v1["version"]}

    second = _train(task_context, "policy_2", datasets["raw"], split=policy, epochs=6, learning_rate=3e-3)
    v2 = _register(task_context, "policy_2", second["mlflow_run_id"], POLICY_MODEL)
    compared = _promote(task_context, "policy_2", v2["version"], datasets["raw"], model_name=POLICY_MODEL)
    # The champion is scored on the same rows: its score is the holdout metric its own run recorded.
    assert compared["champion_version"] == v1["version"]
    assert compared["champion_score"] == pytest.approx(run.data.metrics["holdout_roc_auc"], abs=1e-4)
    second_auc = client.get_run(second["mlflow_run_id"]).data.metrics["holdout_roc_auc"]
    assert compared["challenger_score"] == pytest.approx(second_auc, abs=1e-4)
    assert compared["holdout_digest"] == dataset_digest(expected)


@pytest.mark.parametrize("change", ["values", "order", "rows"])
def test_a_holdout_that_differs_from_the_trainers_fails_before_anything_is_tagged(
    mlflow_connection: str, datasets: dict[str, str], task_context: Context, tmp_path: Path, change: str
) -> None:
    model = f"churn_mismatch_{change}_it"
    client = MlflowClient(mlflow_connection)
    policy = SplitPolicy.random_by(seed=0, stratify=True)
    trained = _train(task_context, f"mismatch_{change}", datasets["raw"], split=policy, epochs=1)
    version = _register(task_context, f"mismatch_{change}", trained["mlflow_run_id"], model)["version"]
    recorded = client.get_run(trained["mlflow_run_id"]).data.tags[Tag.HOLDOUT_DIGEST]

    raw = read_dataset(datasets["raw"])
    if change == "values":  # a few held-out rows edited
        rows = np.flatnonzero(policy.labels(raw, demo_data.TARGET) == Split.HOLDOUT)[:5]
        changed = raw.copy()
        changed.loc[rows, "usage_gb"] += 1.0
    elif change == "order":  # the same rows, reordered: the seeded shuffle holds out others
        changed = raw.iloc[::-1].reset_index(drop=True)
    else:  # a day more of data
        more = demo_data.generate_batch(500, "2026-01-08", seed=4)
        changed = pd.concat([raw, more], ignore_index=True)
    uri = str(tmp_path / "changed.parquet")
    write_dataset(changed, uri)
    actual = dataset_digest(policy.partition(changed, demo_data.TARGET)[Split.HOLDOUT])
    assert actual != recorded

    with pytest.raises(AirflowFailException) as caught:
        _promote(task_context, f"mismatch_{change}", version, uri, model_name=model)
    message = str(caught.value)
    assert f"the holdout rows of {uri} differ from the rows the trainer held out" in message
    assert f"their digest is {actual}, the trainer recorded {recorded}" in message
    tags = client.get_model_version(model, version).tags
    assert not {Tag.PROMOTION, Tag.PROMOTION_DECISION, Tag.REJECTED} & set(tags)
    assert _aliases(client, model) == {}


def test_regression_with_a_temporal_policy(
    mlflow_connection: str, datasets: dict[str, str], task_context: Context
) -> None:
    """Predict usage from the rest; the newest 20% of rows are held out, and promotion scores on them."""
    model = "usage_temporal_it"
    client = MlflowClient(mlflow_connection)
    policy = SplitPolicy.temporal_by(demo_data.TIMESTAMP, validation=0.1, holdout=0.2)
    shuffled = read_dataset(datasets["raw"]).sample(frac=1, random_state=5, ignore_index=True)
    uri = str(Path(datasets["raw"]).with_name("shuffled.parquet"))
    write_dataset(shuffled, uri)
    numeric = [name for name in demo_data.FEATURES_NUMERIC if name != "usage_gb"]
    train = GPUTrainingOperator(
        task_id="train_model",
        dataset_uri=uri,
        target="usage_gb",
        numeric_features=numeric,
        categorical_features=demo_data.FEATURES_CATEGORICAL,
        problem_type="regression",
        split=policy,
        experiment_name=model,
        hyperparameters={"seed": 7, "epochs": 4, "learning_rate": 3e-3},
        backend="local",
        namespace="unused",
    )
    trained: dict[str, Any] = train.execute(task_context("train_model", "temporal_1"))
    run = client.get_run(trained["mlflow_run_id"])
    holdout = policy.partition(shuffled, "usage_gb")[Split.HOLDOUT]
    assert len(holdout) == 800
    assert holdout[demo_data.TIMESTAMP].min() == shuffled[demo_data.TIMESTAMP].nlargest(800).min()
    assert run.data.params[RunParam.SPLIT_POLICY] == policy.to_json()
    assert run.data.tags[Tag.HOLDOUT_DIGEST] == dataset_digest(holdout)

    version = _register(task_context, "temporal_1", trained["mlflow_run_id"], model)["version"]
    promoted = _promote(
        task_context, "temporal_1", version, uri, model_name=model, target="usage_gb",
        problem_type="regression", metric="rmse", min_value=100.0, min_improvement=0.0,
    )  # fmt: skip
    assert promoted["promote"], promoted["reason"]
    assert promoted["policy"]["direction"] == "minimize"
    assert (promoted["holdout_rows"], promoted["holdout_digest"]) == (800, dataset_digest(holdout))
    assert promoted["challenger_score"] == pytest.approx(run.data.metrics["holdout_rmse"], rel=1e-4)
    assert _aliases(client, model) == {CHAMPION: version}
