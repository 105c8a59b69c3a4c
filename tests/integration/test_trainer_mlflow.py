"""The trainer against a real MLflow server: what it logs, and that the logged model loads and predicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.contracts import RunParam, Split, Tag
from airflow_mlops_provider.core.io.datasets import dataset_digest, write_dataset
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.models.metrics import compute_metrics
from airflow_mlops_provider.training.__main__ import main
from demo.data import (
    FEATURES_CATEGORICAL,
    FEATURES_NUMERIC,
    TARGET,
    assign_splits,
    generate_batch,
)
from tests.fixtures.mlflow_server import MlflowServer
from tests.paths import REPO

pytestmark = pytest.mark.integration

ROOT = REPO
EPOCHS = 4
ARGS = [
    "--target",
    TARGET,
    "--problem-type",
    "binary",
    "--categorical-features",
    ",".join(FEATURES_CATEGORICAL),
    "--epochs",
    str(EPOCHS),
    "--learning-rate",
    "0.01",
    "--seed",
    "7",
    "--device",
    "cpu",
]


@dataclass(frozen=True)
class Trained:
    run_id: str
    summary: dict[str, object]
    data: pd.DataFrame
    data_uri: str


def _new_run(name: str) -> str:
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    return client.create_run(experiment_id).info.run_id


@pytest.fixture(scope="module")
def trained(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """Train once through the real CLI in a subprocess; numeric features come from TRAINER_* env."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
        yield _train_in_subprocess(tmp_path_factory.mktemp("data"))


def _train_in_subprocess(data_dir: Path) -> Trained:
    data = assign_splits(generate_batch(3000, "2024-03-01", days=14, seed=11))
    data_uri = str(data_dir / "training_set.parquet")
    write_dataset(data, data_uri)
    run_id = _new_run("trainer-it")
    env = os.environ | {
        "MLFLOW_RUN_ID": run_id,
        "TRAINER_NUMERIC_FEATURES": ",".join(FEATURES_NUMERIC),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-m", "airflow_mlops_provider.training", "--data-uri", data_uri, *ARGS],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["mlflow_run_id"] == run_id
    return Trained(run_id, summary, data, data_uri)


def test_run_has_params_metrics_input_and_tags(trained: Trained) -> None:
    client = mlflow.MlflowClient()
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == str(EPOCHS)
    read_back = {  # what the drift check reads back
        RunParam.TARGET: TARGET,
        RunParam.NUMERIC_FEATURES: ",".join(FEATURES_NUMERIC),
        RunParam.CATEGORICAL_FEATURES: ",".join(FEATURES_CATEGORICAL),
        RunParam.SPLIT_COLUMN: Split.COLUMN,
        RunParam.SPLIT_POLICY: SplitPolicy.existing().to_json(),  # no --split-policy: the split column
        RunParam.PROBLEM_TYPE: "binary",
    }
    assert {key: run.data.params.get(key) for key in read_back} == read_back
    holdout = trained.data[trained.data[Split.COLUMN] == Split.HOLDOUT].reset_index(drop=True)
    assert run.data.tags[Tag.HOLDOUT_DIGEST] == dataset_digest(holdout) == trained.summary["holdout_digest"]
    assert run.data.tags[Tag.SPLIT_POLICY] == SplitPolicy.existing().to_json()
    assert int(run.data.params["rows_holdout"]) == (trained.data[Split.COLUMN] == Split.HOLDOUT).sum()
    history = client.get_metric_history(trained.run_id, "val_loss")
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    assert {"train_loss", "val_roc_auc", "holdout_roc_auc", "holdout_log_loss"} <= set(run.data.metrics)

    digest = dataset_digest(trained.data)
    assert run.data.tags[Tag.DATASET_URI] == trained.data_uri
    assert run.data.tags[Tag.DATASET_DIGEST] == digest == trained.summary["dataset_digest"]
    assert run.data.tags[Tag.MODEL_URI] == trained.summary["model_uri"]
    assert run.inputs is not None
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == digest
    assert dataset_input.dataset.name == "training_set"
    assert json.loads(dataset_input.dataset.source)["uri"] == trained.data_uri


def test_logged_model_predicts_raw_features(trained: Trained) -> None:
    model = mlflow.pyfunc.load_model(str(trained.summary["model_uri"]))
    holdout = trained.data[trained.data["split"] == "holdout"]
    raw = holdout.drop(columns=[TARGET, "split"]).reset_index(drop=True)
    raw.loc[0, "plan"] = "enterprise"  # unseen category -> out-of-vocabulary embedding
    raw.loc[1, "region"] = "atlantis"
    predictions = model.predict(raw)
    assert predictions.shape == (len(raw),)
    assert np.all((predictions >= 0) & (predictions <= 1))
    auc = compute_metrics("binary", holdout[TARGET].to_numpy(), predictions)["roc_auc"]
    assert auc > 0.7
    run = mlflow.MlflowClient().get_run(trained.run_id)
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(auc, abs=0.01)


def test_logged_model_loads_without_the_provider(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    """The network and pyfunc classes are pickled by value: serving needs only the pip requirements."""
    for name in [m for m in sys.modules if m.split(".")[0] == "airflow_mlops_provider"]:
        monkeypatch.setitem(sys.modules, name, None)  # any import of the provider now fails
    with pytest.raises(ImportError):
        import airflow_mlops_provider.training.model  # noqa: F401
    model_uri = str(trained.summary["model_uri"])
    predictions = mlflow.pyfunc.load_model(model_uri).predict(trained.data.head(3))
    assert predictions.shape == (3,)
    local = mlflow.artifacts.download_artifacts(model_uri)
    assert type(mlflow.pytorch.load_model(f"{local}/artifacts/torch_model")).__name__ == "TabularMLP"


def test_same_seed_same_holdout_metric(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = _new_run("trainer-it")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)  # mlflow.end_run() removes it from the environment
    monkeypatch.setenv("TRAINER_NUMERIC_FEATURES", ",".join(FEATURES_NUMERIC))
    assert main(["--data-uri", trained.data_uri, *ARGS]) == 0
    again = mlflow.MlflowClient().get_run(run_id).data.metrics
    assert again["holdout_roc_auc"] == trained.summary["metrics"]["holdout_roc_auc"]  # type: ignore[index]
    assert again["holdout_log_loss"] == trained.summary["metrics"]["holdout_log_loss"]  # type: ignore[index]


def test_bad_data_fails_the_run_with_exit_code_2(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_uri = str(tmp_path / "bad.parquet")
    write_dataset(trained.data.drop(columns=["usage_gb"]), bad_uri)
    run_id = _new_run("trainer-it")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("TRAINER_NUMERIC_FEATURES", ",".join(FEATURES_NUMERIC))
    assert main(["--data-uri", bad_uri, *ARGS]) == 2
    assert "trainer error: dataset is missing columns ['usage_gb']" in capsys.readouterr().err
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FAILED"


def test_unknown_run_is_bad_input(
    trained: Trained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    monkeypatch.setenv("TRAINER_NUMERIC_FEATURES", ",".join(FEATURES_NUMERIC))
    assert main(["--data-uri", trained.data_uri, *ARGS]) == 2
    assert f"MLflow run {'0' * 32!r} does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ('{"kind": "random", "holdout": 1.5}', "split-policy: validation and holdout must be numbers >= 0"),
        ("stratified please", "split-policy: a split policy must be JSON"),
        (SplitPolicy.temporal_by("signup_time").to_json(), "dataset is missing columns ['signup_time']"),
        (SplitPolicy.random_by(validation=0).to_json(), "has no 'validation' rows (of 3000)"),
    ],
)
def test_a_bad_split_policy_is_bad_input_and_fails_the_run(
    trained: Trained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], policy: str, message: str
) -> None:
    """Refused while parsing the options or while splitting: either way exit code 2, and no RUNNING run."""
    run_id = _new_run("trainer-it")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("TRAINER_NUMERIC_FEATURES", ",".join(FEATURES_NUMERIC))
    monkeypatch.setenv("TRAINER_SPLIT_POLICY", policy)
    assert main(["--data-uri", trained.data_uri, *ARGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trainer error: ") and message in err
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FAILED"


def test_a_dataset_without_a_split_column_trained_with_a_policy(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = trained.data.drop(columns=Split.COLUMN)
    uri = str(tmp_path / "raw.parquet")
    write_dataset(raw, uri)
    policy = SplitPolicy.random_by(seed=0, stratify=True)
    run_id = _new_run("trainer-it")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("TRAINER_NUMERIC_FEATURES", ",".join(FEATURES_NUMERIC))
    assert main(["--data-uri", uri, *ARGS, "--epochs", "1", "--split-policy", policy.to_json()]) == 0
    run = mlflow.MlflowClient().get_run(run_id)
    holdout = policy.partition(raw, TARGET)[Split.HOLDOUT]
    assert run.data.params[RunParam.SPLIT_POLICY] == policy.to_json()
    assert run.data.tags[Tag.HOLDOUT_DIGEST] == dataset_digest(holdout)
    assert run.data.params["rows_holdout"] == str(len(holdout)) == "450"
    assert run.data.tags[Tag.DATASET_DIGEST] == dataset_digest(raw)
