"""The pipeline scaffold's logic: core.scaffold (plan, render, suite), without Airflow or the command line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from airflow_mlops_provider.contracts import ProblemType
from airflow_mlops_provider.core import scaffold
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.scaffold import Exclusion, PipelinePlan, ScaffoldError, plan_pipeline, render_dag
from airflow_mlops_provider.core.validation.suites import validate_frame
from tests.paths import REPO

URI = "/data/input.parquet"


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    return frame.assign(event_time=pd.date_range("2024-01-01", periods=len(frame), freq="h", tz="UTC"))


@pytest.fixture
def mixed() -> pd.DataFrame:
    """One column of each kind the feature picker tells apart, on 60 rows."""
    n = 60
    rng = np.random.default_rng(0)
    with_nan = rng.normal(size=n)
    with_nan[3] = np.nan
    return pd.DataFrame(
        {
            "label": np.tile([0, 1], n // 2),
            "amount": rng.normal(size=n),
            "count": rng.integers(0, 9, size=n),
            "plan": rng.choice(["basic", "pro"], size=n),
            "tier": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
            "active": rng.choice([True, False], size=n),
            "customer_id": np.arange(n),
            "comment": [f"free text {i}" for i in range(n)],
            "signup": pd.date_range("2023-01-01", periods=n, freq="D"),
            "constant": 1.0,
            "empty": pd.Series([None] * n, dtype="object"),
            "with_nan": with_nan,
            "split": "train",
            "a,b": rng.normal(size=n),
        }
    )


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the project's ruff, with the project's settings, on generated files."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--config", str(REPO / "pyproject.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


# --- Planning ---------------------------------------------------------------------------------------


def test_a_binary_target_is_inferred_and_split_at_random_stratified(cancer: pd.DataFrame) -> None:
    plan = plan_pipeline(cancer, "breast_cancer", URI, "target")
    assert plan.problem_type == ProblemType.BINARY
    assert plan.numeric_features == tuple(c for c in cancer.columns if c != "target")
    assert plan.categorical_features == () and plan.excluded == ()
    assert (plan.metric, plan.min_metric, plan.rows, plan.batch_size) == ("roc_auc", 0.7, 569, 64)
    assert plan.split_expression == "SplitPolicy.random_by(seed=0, stratify=True)"


def test_a_numeric_target_is_a_regression_whose_bar_is_predicting_the_mean(diabetes: pd.DataFrame) -> None:
    plan = plan_pipeline(diabetes, "diabetes", URI, "target")
    assert plan.problem_type == ProblemType.REGRESSION and plan.metric == "rmse"
    std = diabetes["target"].std(ddof=0)
    assert std <= plan.min_metric <= std * 1.01
    assert plan.split_expression == "SplitPolicy.random_by(seed=0)"
    assert ("event_time", "a time, not a feature") in {(e.column, e.reason) for e in plan.excluded}


def test_a_time_column_gives_a_temporal_split_and_is_no_feature(diabetes: pd.DataFrame) -> None:
    plan = plan_pipeline(diabetes, "diabetes", URI, "target", time_column="event_time")
    assert plan.time_column == "event_time"
    assert "event_time" not in plan.numeric_features + plan.categorical_features
    assert plan.split_expression == "SplitPolicy.temporal_by(TIME_COLUMN, validation=0.15, holdout=0.15)"
    assert plan.excluded == ()


def test_features_by_dtype_and_why_the_others_are_left_out(mixed: pd.DataFrame) -> None:
    plan = plan_pipeline(mixed, "mixed", URI, "label")
    assert plan.numeric_features == ("amount", "count")
    assert plan.categorical_features == ("plan", "tier", "active")
    reasons = {e.column: e.reason for e in plan.excluded}
    assert list(reasons) == ["customer_id", "comment", "signup", "constant", "empty", "with_nan", "split", "a,b"]
    assert reasons["customer_id"] == "an identifier"
    assert reasons["comment"].startswith("60 distinct values in 60 rows")
    assert reasons["signup"] == "a time, not a feature"
    assert (reasons["constant"], reasons["empty"]) == ("constant", "empty")
    assert reasons["with_nan"].startswith("missing or infinite values")
    assert "split policy" in reasons["split"] and "comma" in reasons["a,b"]


def test_iso_strings_are_a_time_column(mixed: pd.DataFrame) -> None:
    frame = mixed.assign(ts=[f"2024-03-{1 + i % 28:02d}T10:00:00+01:00" for i in range(len(mixed))])
    assert plan_pipeline(frame, "m", URI, "label", time_column="ts").time_column == "ts"


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ({}, {"target": "churned"}, "no target column 'churned' in /data/input.parquet; its columns: label, amount"),
        ({}, {"time_column": "when"}, "no time column 'when' in /data/input.parquet; its columns: label, amount"),
        ({}, {"time_column": "label"}, "the time column cannot be the target 'label'"),
        ({}, {"time_column": "amount"}, "time column 'amount' is float64, not a time"),
        ({"ts": "yesterday"}, {"time_column": "ts"}, "time column 'ts' is not a time: 'yesterday' does not parse"),
        ({"ts": ["2024-01-01", None] * 30}, {"time_column": "ts"}, "time column 'ts' has 30 missing values"),
        ({"label": 1}, {}, "binary target 'label' has one class (1): a model needs both 0 and 1"),
        ({"label": [1, 2] * 30}, {"problem_type": "binary"}, "target 'label' must hold only 0 and 1, found 1, 2"),
        ({"label": ["no", "yes"] * 30}, {"problem_type": "binary"}, "must hold only 0 and 1, found 'no', 'yes': map"),
        ({"label": ["no", "yes"] * 30}, {}, "target 'label' is not numeric (object, e.g. 'no', 'yes'): map it to 0/1"),
        ({"label": ["a", "b"] * 30}, {"problem_type": "regression"}, "regression target 'label' must be numeric"),
        ({"label": [True, False] * 30}, {"problem_type": "regression"}, "regression target 'label' must be numeric"),
        ({"label": [0.0, np.nan] * 30}, {}, "target 'label' has 30 missing values: drop or fill those rows"),
        ({"label": [1] * 57 + [0] * 3}, {}, "binary target 'label' has 3 rows of class 0: at least 5 of each"),
        ({"label": 3.5}, {"problem_type": "regression"}, "regression target 'label' is constant (3.5)"),
        ({"label": [np.inf, 1.0] * 30}, {"problem_type": "regression"}, "regression target 'label' has infinite"),
        ({}, {"problem_type": "multiclass"}, "problem type must be one of ('regression', 'binary'), not 'multiclass'"),
        ({}, {"target": "split"}, "the split policy writes a column 'split': rename your 'split' column"),
    ],
)
def test_bad_columns_are_refused_with_what_is_wrong(
    mixed: pd.DataFrame, change: dict[str, object], kwargs: dict[str, str], message: str
) -> None:
    arguments = {"target": "label"} | kwargs
    with pytest.raises(ScaffoldError) as raised:
        plan_pipeline(mixed.assign(**change), "m", URI, **arguments)
    assert message in str(raised.value)


def test_too_few_rows_or_no_features_are_refused(mixed: pd.DataFrame) -> None:
    with pytest.raises(ScaffoldError, match="has 19 rows; a pipeline needs at least 20"):
        plan_pipeline(mixed.head(19), "m", URI, "label")
    with pytest.raises(ScaffoldError, match=r"no usable feature columns \(customer_id: an identifier; constant: "):
        plan_pipeline(mixed[["label", "customer_id", "constant"]], "m", URI, "label")


@pytest.mark.parametrize("name", ["churn", "Churn_v2", "_x", "a" * 64])
def test_identifiers_name_pipelines(name: str) -> None:
    assert scaffold.check_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my-model", "the name 'my-model' is not an identifier"),
        ("2fast", "is not an identifier"),
        ("my model", "is not an identifier"),
        ("modèle", "is not an identifier"),
        ("", "is not an identifier"),
        ("a" * 65, "is longer than 64 characters"),
    ],
)
def test_other_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        scaffold.check_name(name)


def test_local_paths_become_absolute_and_uris_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert scaffold.data_uri_of("data/x.parquet") == str(tmp_path.resolve() / "data" / "x.parquet")
    assert scaffold.data_uri_of("s3://bucket/x.parquet") == "s3://bucket/x.parquet"
    files = scaffold.pipeline_files(Path("dags"), "churn")
    assert files.all == (Path("dags/churn_ct.py"), Path("dags/expectations/churn.json"))


def test_unreadable_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    (tmp_path / "data.txt").write_text("a,b\n")
    with pytest.raises(ScaffoldError, match=r"^no data at .*missing\.parquet$"):
        scaffold.read_data(str(tmp_path / "missing.parquet"))
    with pytest.raises(ScaffoldError, match=r"^cannot read .*broken\.parquet: cannot read dataset"):
        scaffold.read_data(str(tmp_path / "broken.parquet"))
    with pytest.raises(ScaffoldError, match=r"^cannot read .*data\.txt"):
        scaffold.read_data(str(tmp_path / "data.txt"))
    with pytest.raises(ScaffoldError, match="one parquet or CSV file, not a prefix"):
        scaffold.read_data(f"{tmp_path}/")


# --- The suite --------------------------------------------------------------------------------------


def test_the_gate_suite_is_the_profile_without_a_row_count_ceiling(mixed: pd.DataFrame) -> None:
    plan = plan_pipeline(mixed, "mixed", URI, "label")
    suite = scaffold.gate_suite(mixed, plan)
    assert suite["name"] == "mixed" and suite["meta"]["profile"]["source"] == URI
    (rows,) = [e["kwargs"] for e in suite["expectations"] if e["type"] == "expect_table_row_count_to_be_between"]
    assert rows == {"min_value": 54, "max_value": None}
    ranged = {e["kwargs"]["column"] for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_between"}
    assert "amount" in ranged and "customer_id" not in ranged  # identifiers get no range
    assert validate_frame(mixed, suite).success
    assert validate_frame(pd.concat([mixed] * 3, ignore_index=True), suite).success, "growing data passes"
    assert not validate_frame(mixed.head(40), suite).success


# --- The DAG file -----------------------------------------------------------------------------------


def plan_of(**changes: object) -> PipelinePlan:
    base = PipelinePlan(
        name="churn",
        data_uri="s3://bucket/churn.parquet",
        target="churned",
        problem_type=ProblemType.BINARY,
        time_column=None,
        numeric_features=("tenure", "charges"),
        categorical_features=("plan",),
    )
    return PipelinePlan(**{**base.__dict__, **changes})


def constants(source: str) -> dict[str, object]:
    """The module-level constants of a rendered DAG file that are literals."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.List | ast.Constant):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            assert isinstance(target, ast.Name)
            values[target.id] = ast.literal_eval(node.value)
    return values


def test_the_dag_file_carries_the_plan() -> None:
    source = render_dag(plan_of())
    assert constants(source) == {
        "MODEL_NAME": "churn",
        "DATA_URI": "s3://bucket/churn.parquet",
        "TARGET": "churned",
        "NUMERIC_FEATURES": ["tenure", "charges"],
        "CATEGORICAL_FEATURES": ["plan"],
    }
    assert "SPLIT = SplitPolicy.random_by(seed=0, stratify=True)\n" in source
    assert "PROBLEM_TYPE = ProblemType.BINARY\n" in source
    assert '"metric": Param("roc_auc", type="string", enum=["roc_auc", "accuracy", "log_loss"],' in source
    assert "DriftWindow" not in source and "days_before_run" not in source and "window_days" not in source
    assert "mlops." not in source, "tag keys come from Tag.*"


def test_a_timed_regression_dag_file_windows_its_drift_check() -> None:
    source = render_dag(plan_of(problem_type=ProblemType.REGRESSION, time_column="ts", min_metric=12.5))
    assert constants(source)["TIME_COLUMN"] == "ts"
    assert "SPLIT = SplitPolicy.temporal_by(TIME_COLUMN, validation=0.15, holdout=0.15)\n" in source
    assert "window=DriftWindow(TIME_COLUMN, start=WINDOW_START, end=WINDOW_END)," in source
    assert 'WINDOW_START, WINDOW_END = days_before_run("params.window_days")' in source
    assert '"min_metric": Param(12.5, type="number", description="Bar a first model must meet (at most)"),' in source
    assert '"metric": Param("rmse", type="string", enum=["rmse", "mae", "r2"],' in source


NAMES = [
    "mean radius",
    'say "hi"',
    "it's",
    'both \' and ""',
    "back\\slash",
    "tab\there",
    "ünïcode",
    "x" * 130,
    "a long name " * 11,
    "幅" * 61,
]


@pytest.mark.parametrize("name", NAMES)
def test_string_literals_round_trip(name: str) -> None:
    assert ast.literal_eval(scaffold._quote(name)) == name


def test_dag_files_pass_ruff_whatever_the_names(tmp_path: Path) -> None:
    plans = {
        "plain.py": plan_of(),
        "odd.py": plan_of(
            data_uri="/mnt/" + "deep/" * 30 + "data.parquet",
            target='label "y"',
            time_column="it's time",
            numeric_features=tuple(NAMES),
            categorical_features=(),
            excluded=(Exclusion("x" * 150, "constant"), Exclusion("id", "an identifier")),
            problem_type=ProblemType.REGRESSION,
            min_metric=123456.789,
        ),
    }
    plans["uri.py"] = plan_of(data_uri="s3://bucket/" + "deep/" * 30 + "data.parquet")
    for name, plan in plans.items():
        (tmp_path / name).write_text(render_dag(plan))
    odd = constants((tmp_path / "odd.py").read_text())
    assert odd["NUMERIC_FEATURES"] == NAMES and odd["TARGET"] == 'label "y"'
    checked = ruff("check", str(tmp_path))
    assert checked.returncode == 0, checked.stdout
    formatted = ruff("format", "--check", "--diff", str(tmp_path))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_next_steps_name_the_files_the_dags_and_what_was_left_out(mixed: pd.DataFrame) -> None:
    plan = plan_pipeline(mixed, "mixed", URI, "label")
    text = scaffold.next_steps(plan, scaffold.pipeline_files(Path("dags"), "mixed"), 42)
    assert "Wrote dags/mixed_ct.py: DAGs mixed_continuous_training and mixed_drift_monitor" in text
    assert "Wrote dags/expectations/mixed.json: 42 expectations" in text
    assert "binary on 'label', 2 numeric and 3 categorical features, random split, promoted on roc_auc" in text
    assert "Left out: 'customer_id' (an identifier); 'comment' (60 distinct values" in text
    assert "CURRENT_URI" in text and "trigger mixed_continuous_training" in text


def test_the_split_expressions_are_valid_policies() -> None:
    namespace = {"SplitPolicy": SplitPolicy, "TIME_COLUMN": "ts"}
    for plan in (plan_of(), plan_of(problem_type=ProblemType.REGRESSION), plan_of(time_column="ts")):
        policy = eval(plan.split_expression, namespace)
        assert isinstance(policy, SplitPolicy)
    assert eval(plan_of().split_expression, namespace) == SplitPolicy.random_by(seed=0, stratify=True)


def test_a_split_the_trainer_would_refuse_is_refused_up_front() -> None:
    # The label flips to all-positive in the newest quarter: a temporal holdout would hold one class only.
    n = 200
    frame = pd.DataFrame(
        {
            "at": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "x": np.arange(n, dtype=float) % 7,
            "label": [i % 2 if i < 150 else 1 for i in range(n)],
        }
    )
    one_class = r"'holdout' split .* holds only one class of 'label'.*drop --time-column"
    with pytest.raises(scaffold.ScaffoldError, match=one_class):
        scaffold.plan_pipeline(frame, "flip", "/data/flip.parquet", "label", ProblemType.BINARY, time_column="at")
    plan = scaffold.plan_pipeline(frame, "flip", "/data/flip.parquet", "label", ProblemType.BINARY)
    assert plan.split_policy == SplitPolicy.random_by(seed=0, stratify=True)
    assert eval(plan.split_expression, {"SplitPolicy": SplitPolicy}) == plan.split_policy
