"""The training area's bad-input corpus (tests/reliability/bad_inputs/training/cases.json), fed through what a
user touches: the operator as a DAG file builds it, its execute() once templates rendered, the trainer's
arguments, the trainer on a dataset, the trainer CLI. Each case fails with its error class and message,
and leaves nothing behind: no MLflow run (operator checks), or the run FAILED with no model and no metrics.

Which surface a case goes through follows its input file: ``.json`` operator arguments (``kwargs``, and
``rendered``: values as templates rendered them, for execute()), ``.args`` extra trainer arguments, a
dataset file for the trainer (on S3 without credentials for ``s3_no_credentials``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import Tag
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from airflow_mlops_provider.training.__main__ import main
from airflow_mlops_provider.training.errors import EXIT_BAD_INPUT, TrainerInputError
from airflow_mlops_provider.training.options import parse_config
from demo.data import FEATURES_CATEGORICAL, FEATURES_NUMERIC, TARGET
from tests.fixtures.s3_server import S3Server
from tests.paths import REPO

CORPUS = Path(__file__).parent / "bad_inputs" / "training"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text())
ERRORS: dict[str, type[BaseException]] = {
    "ValueError": ValueError,
    "AirflowFailException": AirflowFailException,
    "TrainerInputError": TrainerInputError,
}
TRAINER_ARGS = [
    "--target", TARGET,
    "--problem-type", "binary",
    "--numeric-features", ",".join(FEATURES_NUMERIC),
    "--categorical-features", ",".join(FEATURES_CATEGORICAL),
    "--epochs", "1",
    "--device", "cpu",
]  # fmt: skip


def test_the_corpus_is_complete() -> None:
    assert len(CASES) >= 8
    assert len({case["case"] for case in CASES}) == len(CASES)
    for case in CASES:
        assert set(case) == {"case", "input", "feed", "error", "match"}
        assert case["error"] in ERRORS and (CORPUS / case["input"]).is_file()


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_bad_input(case: dict[str, Any], request: pytest.FixtureRequest) -> None:
    error, match = ERRORS[case["error"]], case["match"]
    path = CORPUS / case["input"]
    if case["case"] == "s3_no_credentials":
        _s3_without_credentials(request, path, match)
    elif path.suffix == ".json":
        _operator_case(request, case["case"], json.loads(path.read_text()), error, match)
    elif path.suffix == ".args":
        _arguments_case(request, json.loads(path.read_text()), error, match)
    else:
        _dataset_case(request, path, error, match)


def _operator_case(
    request: pytest.FixtureRequest, name: str, spec: dict[str, Any], error: type[BaseException], match: str
) -> None:
    kwargs = {
        "task_id": "train",
        "dataset_uri": str(CORPUS / "clean.csv"),
        "target": TARGET,
        "numeric_features": FEATURES_NUMERIC,
        "categorical_features": FEATURES_CATEGORICAL,
        "hyperparameters": {"epochs": 1, "device": "cpu"},
        "experiment_name": f"bad_inputs_{name}",
        "storage_conn_id": None,
        "namespace": "ml",
    } | spec["kwargs"]
    if not kwargs["dataset_uri"].startswith("/"):
        kwargs["dataset_uri"] = str(CORPUS / kwargs["dataset_uri"])
    if "rendered" not in spec:  # refused as the DAG file is parsed
        with pytest.raises(error, match=match):
            GPUTrainingOperator(**kwargs)
        return
    tracking_uri: str = request.getfixturevalue("mlflow_connection")
    context = request.getfixturevalue("task_context")("train", f"bad_input_{name}")
    op = GPUTrainingOperator(**kwargs)
    rendered = dict(spec["rendered"])
    if "gpus" in rendered:
        op.gpus = rendered.pop("gpus")  # the pod operator built in execute() takes its limit from it
    for field, value in rendered.items():
        setattr(op, field, value)
    with pytest.raises(error, match=match):
        op.execute(context)
    runs = _runs(tracking_uri, kwargs["experiment_name"])
    if op._process is None:  # refused before the trainer: nothing exists
        assert runs == []
    else:  # the trainer refused the data: its run ended FAILED, without a model
        assert [run.info.status for run in runs] == ["FAILED"]
        assert Tag.MODEL_URI not in runs[0].data.tags and not runs[0].data.metrics


def _arguments_case(request: pytest.FixtureRequest, extra: list[str], error: type[BaseException], match: str) -> None:
    argv = ["--data-uri", str(CORPUS / "clean.csv"), *TRAINER_ARGS, *extra]
    with pytest.raises(error, match=match):
        parse_config(argv, env={})
    # The CLI: exit code 2, the message on stderr, and the run it was given ended FAILED (not left RUNNING).
    tracking_uri: str = request.getfixturevalue("mlflow_connection")
    run_id = _new_run(tracking_uri, "bad_inputs_arguments")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
    assert main(argv) == EXIT_BAD_INPUT
    assert re.search(match, capsys.readouterr().err)
    _assert_failed_without_model(tracking_uri, run_id)


def _dataset_case(request: pytest.FixtureRequest, path: Path, error: type[BaseException], match: str) -> None:
    from airflow_mlops_provider.training.trainer import run_training

    tracking_uri: str = request.getfixturevalue("mlflow_connection")
    run_id = _new_run(tracking_uri, "bad_inputs_datasets")
    config = parse_config(["--data-uri", str(path), *TRAINER_ARGS], env={})
    with pytest.raises(error, match=match):
        run_training(config, run_id, ObjectStore())
    _assert_failed_without_model(tracking_uri, run_id)


def _s3_without_credentials(request: pytest.FixtureRequest, path: Path, match: str) -> None:
    """The trainer CLI on an s3:// dataset with an endpoint but no credentials anywhere: exit 2, fast."""
    tracking_uri: str = request.getfixturevalue("mlflow_connection")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    uri = f"{bucket}/clean.csv"
    ObjectStore(server.config).write_bytes(uri, path.read_bytes())
    run_id = _new_run(tracking_uri, "bad_inputs_s3")
    tmp: Path = request.getfixturevalue("tmp_path")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRAINER_", "MLFLOW_"))}
    env |= {
        "AWS_ENDPOINT_URL": server.endpoint_url,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp / "no-config"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_RUN_ID": run_id,
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "airflow_mlops_provider.training", "--data-uri", uri, *TRAINER_ARGS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(f"trainer refused the dataset in {time.monotonic() - started:.1f}s")
    assert done.returncode == EXIT_BAD_INPUT, done.stderr[-2000:]
    assert f"trainer error: cannot read dataset {uri}: " in done.stderr
    assert re.search(match, done.stderr), done.stderr[-2000:]
    _assert_failed_without_model(tracking_uri, run_id)


def _new_run(tracking_uri: str, experiment: str) -> str:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    return client.create_run(experiment_id).info.run_id


def _runs(tracking_uri: str, experiment: str) -> list[Any]:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else list(client.search_runs([found.experiment_id]))


def _assert_failed_without_model(tracking_uri: str, run_id: str) -> None:
    run = MlflowClient(tracking_uri).get_run(run_id)
    assert run.info.status == "FAILED"
    assert Tag.MODEL_URI not in run.data.tags
    assert not run.data.metrics
