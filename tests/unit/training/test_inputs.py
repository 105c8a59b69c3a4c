"""Bad trainer inputs fail early with messages that name the problem; the encoder handles raw values."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.training.data import load_dataset, split_dataset
from airflow_mlops_provider.training.encoding import OOV_INDEX, FeatureEncoder
from airflow_mlops_provider.training.errors import TrainerInputError
from airflow_mlops_provider.training.options import TrainConfig, parse_config
from demo.data import (
    FEATURES_CATEGORICAL,
    FEATURES_NUMERIC,
    TARGET,
    assign_splits,
    generate_batch,
)
from tests.paths import REPO

ROOT = REPO
REQUIRED = ["--data-uri", "d.parquet", "--target", TARGET, "--problem-type", "binary"]


def _config(**overrides: object) -> TrainConfig:
    fields: dict[str, object] = {
        "data_uri": "d.parquet",
        "target": TARGET,
        "problem_type": "binary",
        "numeric_features": tuple(FEATURES_NUMERIC),
        "categorical_features": tuple(FEATURES_CATEGORICAL),
    }
    return TrainConfig(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return assign_splits(generate_batch(600, "2024-01-01", days=5, seed=1))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINER_", "MLFLOW_"))}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "airflow_mlops_provider.training", *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- configuration and CLI ---------------------------------------------------------------------


def test_env_supplies_options_and_the_command_line_wins() -> None:
    env = {"TRAINER_EPOCHS": "3", "TRAINER_NUMERIC_FEATURES": "a, b", "TRAINER_HIDDEN_SIZES": "8,4"}
    config = parse_config([*REQUIRED, "--epochs", "5"], env)
    assert (config.epochs, config.numeric_features, config.hidden_sizes) == (5, ("a", "b"), (8, 4))
    assert parse_config(REQUIRED, env).epochs == 3


def test_required_options_can_come_from_env() -> None:
    env = {"TRAINER_DATA_URI": "s3://b/d.parquet", "TRAINER_TARGET": "y", "TRAINER_PROBLEM_TYPE": "regression"}
    config = parse_config(["--numeric-features", "x"], env)
    assert (config.data_uri, config.problem_type, config.features) == ("s3://b/d.parquet", "regression", ["x"])


def test_unparsable_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config([*REQUIRED, "--epochs", "many"], {})
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("trainer error: argument --epochs")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"problem_type": "multiclass"}, "problem-type must be one of"),
        ({"numeric_features": (), "categorical_features": ()}, "at least one"),
        ({"categorical_features": ("plan", "plan")}, "more than once: \\['plan'\\]"),
        ({"numeric_features": (TARGET,)}, "target and split column must not be features"),
        ({"epochs": 0}, "must be >= 1"),
        ({"learning_rate": 0.0}, "learning-rate"),
        ({"hidden_sizes": (8, 0)}, "hidden-sizes"),
        ({"device": "tpu"}, "device"),
        ({"patience": -1}, "patience"),
    ],
)
def test_invalid_config(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TrainerInputError, match=message):
        _config(**overrides)


def test_cli_bad_input_exits_2_with_prefixed_message() -> None:
    result = _cli(*REQUIRED, "--numeric-features", "x", "--epochs", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("trainer error: ")
    assert "epochs" in result.stderr


def test_cli_needs_mlflow_env() -> None:
    result = _cli(*REQUIRED, env={"TRAINER_NUMERIC_FEATURES": "x"})
    assert result.returncode == 2
    assert "['MLFLOW_TRACKING_URI', 'MLFLOW_RUN_ID']" in result.stderr


def test_cli_help_documents_env_and_exit_codes() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for text in ("TRAINER_EPOCHS", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "exit codes"):
        assert text in result.stdout


# --- dataset checks ----------------------------------------------------------------------------


def test_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(TrainerInputError, match=r"dataset not found: .*nope\.parquet"):
        load_dataset(str(tmp_path / "nope.parquet"))


def test_unsupported_dataset_format(tmp_path: Path) -> None:
    with pytest.raises(TrainerInputError, match="unsupported dataset format"):
        load_dataset(str(tmp_path / "data.json"))


def test_loads_a_written_dataset(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "d.parquet")
    write_dataset(frame, uri)
    splits = split_dataset(load_dataset(uri), _config())
    assert len(splits.train) + len(splits.validation) + len(splits.holdout) == len(frame)  # type: ignore[arg-type]


def test_empty_dataset(frame: pd.DataFrame) -> None:
    with pytest.raises(TrainerInputError, match="is empty"):
        split_dataset(frame.iloc[:0], _config())


def test_missing_columns_are_named(frame: pd.DataFrame) -> None:
    with pytest.raises(TrainerInputError, match=r"missing columns \['usage_gb', 'split'\]"):
        split_dataset(frame.drop(columns=["usage_gb", "split"]), _config())


def test_non_numeric_feature_is_named(frame: pd.DataFrame) -> None:
    bad = frame.assign(usage_gb=frame["usage_gb"].astype(str))
    with pytest.raises(TrainerInputError, match=re.escape("not numeric: {'usage_gb': 'object'}")):
        split_dataset(bad, _config())


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_numeric_features_are_counted_per_column(frame: pd.DataFrame, value: float) -> None:
    bad = frame.copy()
    bad.loc[[1, 5, 9], "monthly_charges"] = value
    with pytest.raises(TrainerInputError, match=r"NaN or infinite values .*\{'monthly_charges': 3\}"):
        split_dataset(bad, _config())


def test_missing_target_values(frame: pd.DataFrame) -> None:
    bad = frame.astype({TARGET: float})
    bad.loc[3, TARGET] = np.nan
    with pytest.raises(TrainerInputError, match=f"target '{TARGET}' has 1 missing values"):
        split_dataset(bad, _config())


def test_non_binary_target(frame: pd.DataFrame) -> None:
    bad = frame.assign(**{TARGET: frame[TARGET] * 2})
    with pytest.raises(TrainerInputError, match=r"must hold only 0 and 1, found \[0.0, 2.0\]"):
        split_dataset(bad, _config())


def test_non_numeric_regression_target(frame: pd.DataFrame) -> None:
    with pytest.raises(TrainerInputError, match="target 'plan' must be numeric"):
        split_dataset(frame, _config(problem_type="regression", target="plan", categorical_features=("region",)))


def test_unknown_split_values(frame: pd.DataFrame) -> None:
    bad = frame.copy()
    bad.loc[0, "split"] = "test"
    with pytest.raises(TrainerInputError, match=r"found \['test'\]"):
        split_dataset(bad, _config())


def test_validation_split_required(frame: pd.DataFrame) -> None:
    bad = frame.replace({"split": {"validation": "train"}})
    with pytest.raises(TrainerInputError, match="no 'validation' rows"):
        split_dataset(bad, _config())


def test_single_class_split(frame: pd.DataFrame) -> None:
    bad = frame.copy()
    bad.loc[bad["split"] == "holdout", TARGET] = 0
    with pytest.raises(TrainerInputError, match="'holdout' split has only one class"):
        split_dataset(bad, _config())


def test_holdout_is_optional(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame.replace({"split": {"holdout": "validation"}}), _config())
    assert splits.holdout is None


# --- encoder -----------------------------------------------------------------------------------


def test_encoder_maps_unseen_and_missing_categories_to_oov(frame: pd.DataFrame) -> None:
    encoder = FeatureEncoder.fit(frame, "binary", FEATURES_NUMERIC, FEATURES_CATEGORICAL, TARGET)
    raw = frame.head(3).astype({"plan": object}).reset_index(drop=True)
    raw.loc[0, "plan"] = "enterprise"
    raw.loc[1, "plan"] = None
    numeric, categories = encoder.encode(raw)
    assert numeric.dtype == np.float32 and numeric.shape == (3, len(FEATURES_NUMERIC))
    assert categories[0, 0] == categories[1, 0] == OOV_INDEX
    assert categories[2, 0] == encoder.vocabularies[0].index(raw.loc[2, "plan"]) + 1
    assert encoder.cardinalities == [4, 5]
    assert FeatureEncoder.from_json(encoder.to_json()) == encoder


def test_encoder_rejects_non_finite_numbers_by_column(frame: pd.DataFrame) -> None:
    encoder = FeatureEncoder.fit(frame, "binary", FEATURES_NUMERIC, FEATURES_CATEGORICAL, TARGET)
    raw = frame.head(2).astype({"usage_gb": float}).reset_index(drop=True)
    raw.loc[0, "usage_gb"] = np.nan
    with pytest.raises(ValueError, match=r"\['usage_gb'\]"):
        encoder.encode(raw)
    with pytest.raises(ValueError, match=r"missing feature columns \['region'\]"):
        encoder.encode(raw.drop(columns="region"))


def test_encoder_scales_regression_target_and_guards_constant_columns() -> None:
    df = pd.DataFrame({"x": [1.0, 1.0, 1.0], "y": [10.0, 20.0, 30.0]})
    encoder = FeatureEncoder.fit(df, "regression", ["x"], [], "y")
    assert encoder.stds == [1.0]
    scaled = encoder.scale_target(df["y"].to_numpy())
    assert scaled.mean() == pytest.approx(0.0)
    assert encoder.decode(scaled) == pytest.approx(df["y"].to_numpy())
