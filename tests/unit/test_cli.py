"""``airflow-mlops new pipeline``: the files it writes, the DAGs they define, and how it refuses bad input.

The generated DAG file is parsed as the DAG processor parses a bundle, in a fresh interpreter where
sockets and connections raise, and checked with the project's ruff settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from airflow.dag_processing.dagbag import BundleDagBag
from sklearn.datasets import load_breast_cancer, load_diabetes

from airflow_mlops_provider.cli import main
from airflow_mlops_provider.config import data_dir
from airflow_mlops_provider.contracts import drift_asset
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.validation.suites import validate_frame
from tests.fixtures.mlflow_server import MlflowServer
from tests.paths import REPO
from tests.unit.dags.test_dag_integrity import HEAVY, parse_in_fresh_interpreter

NAME = "breast_cancer"


@pytest.fixture(scope="module")
def cancer_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("data") / "breast_cancer.parquet"
    load_breast_cancer(as_frame=True).frame.to_parquet(path)
    return str(path)


@pytest.fixture(scope="module")
def diabetes_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The diabetes data with an event time and a categorical column, as CSV."""
    frame = load_diabetes(as_frame=True).frame
    frame = frame.assign(
        event_time=pd.date_range("2024-01-01", periods=len(frame), freq="h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        sex=np.where(frame["sex"] > 0, "f", "m"),
    )
    path = tmp_path_factory.mktemp("data") / "diabetes.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def cancer_dags(tmp_path_factory: pytest.TempPathFactory, cancer_uri: str) -> Path:
    """A DAGs folder with the breast-cancer pipeline, written by the command."""
    dags = tmp_path_factory.mktemp("project") / "dags"
    assert main(["new", "pipeline", NAME, "--from", cancer_uri, "--target", "target", "--dags-folder", str(dags)]) == 0
    return dags


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--config", str(REPO / "pyproject.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def new_pipeline(*args: str) -> list[str]:
    return ["new", "pipeline", *args]


# --- What it writes ---------------------------------------------------------------------------------


def test_it_writes_the_dag_file_and_a_suite_that_passes_on_the_data(cancer_dags: Path, cancer_uri: str) -> None:
    assert sorted(str(p.relative_to(cancer_dags)) for p in cancer_dags.rglob("*") if p.is_file()) == [
        "breast_cancer_ct.py",
        "expectations/breast_cancer.json",
    ]
    suite = json.loads((cancer_dags / "expectations" / "breast_cancer.json").read_text())
    assert suite["name"] == NAME and suite["meta"]["profile"]["source"] == cancer_uri
    assert validate_frame(pd.read_parquet(cancer_uri), suite).success
    source = (cancer_dags / "breast_cancer_ct.py").read_text()
    assert f'DATA_URI = "{cancer_uri}"\n' in source
    assert "mlops." not in source, "tag keys come from Tag.*"


def test_the_dag_file_parses_without_heavy_imports_connections_or_network(cancer_dags: Path) -> None:
    result = parse_in_fresh_interpreter(cancer_dags)
    assert result["errors"] == {}
    assert result["dags"] == [f"{NAME}_continuous_training", f"{NAME}_drift_monitor"]
    assert result["heavy"] == [], f"heavy libraries imported at parse time: {result['heavy']}"


def test_the_dag_file_passes_ruff(cancer_dags: Path) -> None:
    checked = ruff("check", str(cancer_dags))
    assert checked.returncode == 0, checked.stdout
    formatted = ruff("format", "--check", "--diff", str(cancer_dags))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_the_training_dag_gates_trains_with_a_split_registers_and_promotes(cancer_dags: Path, cancer_uri: str) -> None:
    from airflow_mlops_provider.operators.registry import PromoteModelOperator
    from airflow_mlops_provider.operators.training import GPUTrainingOperator
    from airflow_mlops_provider.operators.validation import DataValidationOperator

    dag = BundleDagBag(str(cancer_dags), bundle_path=cancer_dags).dags[f"{NAME}_continuous_training"]
    assert {t: dag.get_task(t).upstream_task_ids for t in dag.task_ids} == {
        "validate_data": set(),
        "train_model": {"validate_data"},
        "register_model": {"train_model"},
        "promote_model": {"register_model"},
    }
    gate, train, promote = dag.get_task("validate_data"), dag.get_task("train_model"), dag.get_task("promote_model")
    assert isinstance(gate, DataValidationOperator) and gate.on_failure == "fail"
    assert gate.dataset == "{{ params.data_uri }}" and gate.suite_path == f"expectations/{NAME}.json"
    assert isinstance(train, GPUTrainingOperator)
    assert train.split == SplitPolicy.random_by(seed=0, stratify=True)
    assert (train.target, train.problem_type, train.experiment_name) == ("target", "binary", NAME)
    assert train.numeric_features == list(load_breast_cancer(as_frame=True).feature_names)
    assert train.categorical_features == []
    assert train.dataset_uri == "{{ params.data_uri }}"
    assert isinstance(promote, PromoteModelOperator)
    assert promote.holdout_uri == train.dataset_uri, "promotion scores the rows the trainer held out"
    assert (promote.metric, promote.min_value) == ("{{ params.metric }}", "{{ params.min_metric }}")
    # The champion Asset gets an event only on a new champion: its outlet is an alias of it.
    assert [o.name for o in promote.outlets] == [f"{NAME}_model_champion__on_new_champion"]
    assert promote.champion_event.asset.uri == f"mlflow://models/{NAME}/champion"
    assert dag.params["data_uri"] == cancer_uri and dag.params["min_metric"] == 0.7
    for name in ("data_uri", "epochs", "learning_rate", "batch_size", "seed", "metric", "min_metric"):
        param = dag.params.get_param(name)
        assert param.description and "type" in param.schema, f"param {name} needs a type and a description"
    assert dag.doc_md and "mlops" in dag.tags and NAME in dag.tags
    assert dag.timetable.asset_condition == drift_asset(NAME), "it retrains on drift"


def test_the_drift_dag_checks_the_whole_fresh_data_without_a_time_column(cancer_dags: Path, cancer_uri: str) -> None:
    from airflow_mlops_provider.operators.drift import DriftCheckOperator

    dag = BundleDagBag(str(cancer_dags), bundle_path=cancer_dags).dags[f"{NAME}_drift_monitor"]
    (check,) = dag.tasks
    assert isinstance(check, DriftCheckOperator)
    assert (check.model_name, check.current_uri) == (NAME, "{{ params.current_uri }}")
    assert check.window.time_column is None and check.window.start is None
    assert check.drift_asset is not None and check.drift_asset.uri == f"mlops://drift/{NAME}"
    assert check.state_uri == f"{data_dir()}/drift_state/{NAME}_monitor.json"
    assert check.episode_policy.cooldown_seconds == 3 * 86_400
    assert dag.params["current_uri"] == cancer_uri and "window_days" not in dag.params


def test_a_time_column_gives_a_temporal_split_and_a_windowed_drift_check(
    tmp_path: Path, diabetes_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_mlops_provider.operators.drift import DriftCheckOperator
    from airflow_mlops_provider.operators.training import GPUTrainingOperator

    dags = tmp_path / "dags"
    argv = new_pipeline("diabetes", "--from", diabetes_uri, "--target", "target", "--time-column", "event_time")
    assert main([*argv, "--dags-folder", str(dags)]) == 0
    assert "regression on 'target', 9 numeric and 1 categorical features, temporal split" in capsys.readouterr().out
    assert parse_in_fresh_interpreter(dags)["errors"] == {}
    assert ruff("check", str(dags)).returncode == 0 and ruff("format", "--check", str(dags)).returncode == 0
    bag = BundleDagBag(str(dags), bundle_path=dags)
    train = bag.dags["diabetes_continuous_training"].get_task("train_model")
    assert isinstance(train, GPUTrainingOperator)
    assert train.split == SplitPolicy.temporal_by("event_time")
    assert train.categorical_features == ["sex"]
    check = bag.dags["diabetes_drift_monitor"].get_task("check_drift")
    assert isinstance(check, DriftCheckOperator)
    assert check.window.time_column == "event_time"
    assert "params.window_days" in str(check.window.start)
    assert bag.dags["diabetes_drift_monitor"].params["window_days"] == 7
    assert bag.dags["diabetes_continuous_training"].params["metric"] == "rmse"


def test_a_relative_path_becomes_absolute_in_the_default_dags_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cancer_uri: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cancer.parquet").write_bytes(Path(cancer_uri).read_bytes())
    argv = new_pipeline("cancer", "--from", "data/cancer.parquet", "--target", "target", "--no-check")
    assert main(argv) == 0
    source = (tmp_path / "dags" / "cancer_ct.py").read_text()
    assert f'DATA_URI = "{tmp_path.resolve() / "data" / "cancer.parquet"}"\n' in source
    assert (tmp_path / "dags" / "expectations" / "cancer.json").is_file()


# --- Overwriting ------------------------------------------------------------------------------------


def test_existing_files_are_kept_without_force(
    tmp_path: Path, cancer_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dags = tmp_path / "dags"
    argv = new_pipeline(NAME, "--from", cancer_uri, "--target", "target", "--dags-folder", str(dags), "--no-check")
    (dags / "expectations").mkdir(parents=True)
    (dags / "expectations" / f"{NAME}.json").write_text("mine")
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"airflow-mlops: error: {dags}/expectations/{NAME}.json already exists; pass --force to overwrite\n"
    )
    assert not (dags / f"{NAME}_ct.py").exists(), "nothing is written when anything would be overwritten"
    assert (dags / "expectations" / f"{NAME}.json").read_text() == "mine"

    (dags / f"{NAME}_ct.py").write_text("mine")
    assert main(argv) == 2
    assert "_ct.py and " in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert "DriftCheckOperator" in (dags / f"{NAME}_ct.py").read_text()
    assert json.loads((dags / "expectations" / f"{NAME}.json").read_text())["name"] == NAME


# --- Bad input: exit 2, one line, nothing written ---------------------------------------------------


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data files for the error paths."""
    folder = tmp_path_factory.mktemp("bad")
    n = 40
    frame = pd.DataFrame(
        {
            "x": np.arange(n, dtype=float),
            "one_class": 1,
            "yes_no": ["yes", "no"] * (n // 2),
            "two_three": [2, 3] * (n // 2),
            "label": [0, 1] * (n // 2),
            "day": ["monday", "tuesday"] * (n // 2),
        }
    )
    frame.to_parquet(folder / "data.parquet")
    (folder / "broken.parquet").write_bytes(b"PAR1 not really")
    (folder / "data.json").write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "churned"], "no target column 'churned' in {data}; its columns: x, one_class, yes_no, two_"),
        (["--target", "label", "--time-column", "ts"], "no time column 'ts' in {data}; its columns: x, one_class, "),
        (["--target", "one_class"], "binary target 'one_class' has one class (1): a model needs both 0 and 1"),
        (["--target", "two_three", "--problem-type", "binary"], "binary target 'two_three' must hold only 0 and 1"),
        (["--target", "yes_no", "--problem-type", "binary"], "binary target 'yes_no' must hold only 0 and 1, found"),
        (["--target", "yes_no", "--problem-type", "regression"], "regression target 'yes_no' must be numeric"),
        (["--target", "label", "--time-column", "day"], "time column 'day' is not a time: 'monday' does not parse"),
        (["--target", "label", "--time-column", "x"], "time column 'x' is float64, not a time"),
    ],
)
def test_bad_columns_fail_with_one_line(
    tmp_path: Path, bad_data: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    data = str(bad_data / "data.parquet")
    assert main(new_pipeline("model", "--from", data, *args, "--dags-folder", str(tmp_path / "dags"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("airflow-mlops: error: " + message.format(data=data)), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "dags").exists()


@pytest.mark.parametrize(
    ("name", "file", "message"),
    [
        ("model", "missing.parquet", "no data at {path}"),
        ("model", "broken.parquet", "cannot read {path}: cannot read dataset {path}: "),
        ("model", "data.json", "cannot read {path}: "),
        ("my-model", "data.parquet", "the name 'my-model' is not an identifier: use letters, digits and underscores"),
        ("1model", "data.parquet", "the name '1model' is not an identifier"),
    ],
)
def test_bad_names_and_unreadable_data_fail_with_one_line(
    tmp_path: Path, bad_data: Path, capsys: pytest.CaptureFixture[str], name: str, file: str, message: str
) -> None:
    path = str(bad_data / file)
    assert main(new_pipeline(name, "--from", path, "--target", "label", "--dags-folder", str(tmp_path))) == 2
    err = capsys.readouterr().err
    assert err.startswith("airflow-mlops: error: " + message.format(path=path)), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_console_script_exits_2_without_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "airflow-mlops"
    out = subprocess.run(
        [str(script), "new", "pipeline", "model", "--from", str(tmp_path / "none.csv"), "--target", "y"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert (out.returncode, out.stderr) == (2, f"airflow-mlops: error: no data at {tmp_path / 'none.csv'}\n")


def test_help_imports_nothing_heavy() -> None:
    script = (
        "import json, sys\n"
        "from airflow_mlops_provider.cli import main\n"
        "try:\n    main(['new', 'pipeline', '--help'])\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert "--time-column COLUMN" in out.stdout and "--problem-type {binary,regression}" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [0, []]


def test_history_prints_every_alias_move_newest_last(
    mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION
    from airflow_mlops_provider.core.models.history import AliasChange, HistoryKind, record_move

    client = MlflowClient(mlflow_server.tracking_uri)
    client.create_registered_model("cli_history")
    record_move(client, "cli_history", CHAMPION, None, "1", AliasChange(HistoryKind.PROMOTION, "ct/r1/promote_model"))
    approval = AliasChange(HistoryKind.APPROVAL, "ct/r2/apply_promotion", by="ann", reason="gain confirmed")
    record_move(client, "cli_history", PREVIOUS_CHAMPION, None, "1", approval)
    record_move(client, "cli_history", CHAMPION, "1", "2", approval)

    assert main(["history", "cli_history", "--tracking-uri", mlflow_server.tracking_uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["#", "when", "(UTC)", "alias"]
    assert [line.split()[2:7] for line in lines[1:]] == [
        [CHAMPION, "-", "1", "promotion", "ct/r1/promote_model"],
        [PREVIOUS_CHAMPION, "-", "1", "approval", "ann"],
        [CHAMPION, "1", "2", "approval", "ann"],
    ]
    assert lines[-1].endswith("gain confirmed")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)  # the URI from the environment
    assert main(["history", "cli_history", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["seq"], e["alias"], e["from"], e["to"], e["kind"], e["by"]) for e in entries] == [
        (1, CHAMPION, None, "1", "promotion", "ct/r1/promote_model"),
        (2, PREVIOUS_CHAMPION, None, "1", "approval", "ann"),
        (3, CHAMPION, "1", "2", "approval", "ann"),
    ]


def test_history_of_an_unknown_model_fails_with_one_line(
    mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "no_such_model", "--tracking-uri", mlflow_server.tracking_uri]) == 2
    err = capsys.readouterr().err
    assert err == f"airflow-mlops: error: No registered model 'no_such_model' on {mlflow_server.tracking_uri}\n"
