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

from airflow_mlops_provider.contracts import RunParam, Split
from airflow_mlops_provider.core.io.datasets import dataset_digest, write_dataset
from airflow_mlops_provider.core.io.splits import SplitPolicy
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


def test_unparsable_arguments_are_bad_input() -> None:
    with pytest.raises(TrainerInputError, match=r"^argument --epochs: invalid int value: 'many' \(see --help\)"):
        parse_config([*REQUIRED, "--epochs", "many"], {})


def test_cli_unparsable_arguments_exit_2() -> None:
    result = _cli(*REQUIRED, "--numeric-features", "x", "--epochs", "many")
    assert result.returncode == 2
    assert result.stderr.startswith("trainer error: argument --epochs: invalid int value: 'many'")


def test_cpu_threads_default_to_the_cores_available_to_the_process() -> None:
    assert _config().cpu_threads == len(os.sched_getaffinity(0))
    assert _config(cpu_threads=1).cpu_threads == 1
    assert parse_config([*REQUIRED, "--numeric-features", "x", "--cpu-threads", "3"], {}).cpu_threads == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"problem_type": "multiclass"}, "problem-type must be one of"),
        ({"numeric_features": (), "categorical_features": ()}, "at least one"),
        ({"categorical_features": ("plan", "plan")}, "more than once: \\['plan'\\]"),
        ({"numeric_features": (TARGET,)}, "target and split column must not be features"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"batch_size": -1}, "batch-size must be >= 1, got -1"),
        ({"cpu_threads": -2}, r"cpu-threads must be >= 0 \(0: the cores available\), got -2"),
        ({"learning_rate": 0.0}, "learning-rate"),
        ({"learning_rate": float("inf")}, "learning-rate must be a finite number > 0, got inf"),
        ({"learning_rate": float("nan")}, "learning-rate must be a finite number > 0, got nan"),
        ({"hidden_sizes": (8, 0)}, "hidden-sizes"),
        ({"device": "tpu"}, "device"),
        ({"patience": -1}, "patience"),
    ],
)
def test_invalid_config(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TrainerInputError, match=message):
        _config(**overrides)


def test_the_default_split_policy_is_the_split_column_and_is_a_run_param() -> None:
    config = _config(split_column="fold")
    assert config.split == SplitPolicy.existing("fold")
    assert config.params()[RunParam.SPLIT_POLICY] == SplitPolicy.existing("fold").to_json() == config.split_policy
    assert config.params()[RunParam.SPLIT_COLUMN] == "fold"


def test_split_policy_from_the_command_line_or_env_normalized_to_its_json() -> None:
    policy = SplitPolicy.random_by(seed=3, stratify=True, column="fold")
    config = parse_config([*REQUIRED, "--numeric-features", "x", "--split-policy", policy.to_json()], {})
    assert (config.split, config.split_column, config.split_policy) == (policy, "fold", policy.to_json())
    loose = '{"kind": "temporal", "time_column": "ts"}'
    from_env = parse_config([*REQUIRED, "--numeric-features", "x"], {"TRAINER_SPLIT_POLICY": loose})
    assert from_env.split == SplitPolicy.temporal_by("ts")
    assert from_env.params()[RunParam.SPLIT_POLICY] == SplitPolicy.temporal_by("ts").to_json()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"split_policy": "random"}, "split-policy: a split policy must be JSON"),
        ({"split_policy": '{"kind": "kfold"}'}, "split-policy: split kind must be one of"),
        ({"split_policy": '{"kind": "random", "holdout": 0.9}'}, "split-policy: validation and holdout"),
        ({"split_column": ""}, "split-column: the split column must be a non-empty name"),
        (
            {"split_column": "fold", "split_policy": SplitPolicy.random_by().to_json()},
            "split-column 'fold' differs from the split policy's column 'split'",
        ),
        (
            {"problem_type": "regression", "split_policy": SplitPolicy.random_by(stratify=True).to_json()},
            "a stratified split needs problem-type 'binary'",
        ),
        ({"split_column": TARGET}, f"the split column must not be the target '{TARGET}'"),
        ({"split_policy": SplitPolicy.random_by(column="plan").to_json()}, "split column must not be features"),
    ],
)
def test_invalid_split_policy(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TrainerInputError, match=message):
        _config(**overrides)


def test_cli_bad_split_policy_exits_2() -> None:
    result = _cli(*REQUIRED, "--numeric-features", "x", "--split-policy", '{"kind": "random", "seed": "x"}')
    assert result.returncode == 2
    assert result.stderr.startswith("trainer error: split-policy: seed must be an integer, got 'x'")


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
    for text in (
        "TRAINER_EPOCHS", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "exit codes",
        "--split-policy", "TRAINER_SPLIT_POLICY", '{"kind":"random","seed":0,"stratify":true}',
    ):  # fmt: skip
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
    assert splits.holdout_digest == dataset_digest(frame.iloc[:0])


def test_holdout_digest_is_the_digest_of_the_datasets_holdout_rows(frame: pd.DataFrame) -> None:
    splits = split_dataset(frame, _config())
    expected = frame[frame["split"] == "holdout"].reset_index(drop=True)
    assert splits.holdout is not None
    pd.testing.assert_frame_equal(splits.holdout, expected)
    assert splits.holdout_digest == dataset_digest(expected)


def test_a_dataset_without_a_split_column_split_by_a_stratified_random_policy(frame: pd.DataFrame) -> None:
    raw = frame.drop(columns="split")
    policy = SplitPolicy.random_by(seed=0, validation=0.2, holdout=0.2, stratify=True)
    splits = split_dataset(raw, _config(split_policy=policy.to_json()))
    parts = policy.partition(raw, TARGET)
    assert splits.holdout is not None
    for got, expected in ((splits.train, parts["train"]), (splits.validation, parts["validation"])):
        pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(splits.holdout, parts["holdout"])
    assert (len(splits.train), len(splits.validation), len(splits.holdout)) == (360, 120, 120)
    share = raw[TARGET].mean()
    for part in (splits.train, splits.validation, splits.holdout):
        assert part[TARGET].mean() == pytest.approx(share, abs=0.01)
    assert splits.holdout_digest == dataset_digest(parts[Split.HOLDOUT])
    again = split_dataset(raw.copy(), _config(split_policy=policy.to_json()))
    assert again.holdout_digest == splits.holdout_digest
    other_seed = SplitPolicy.random_by(seed=1, validation=0.2, holdout=0.2, stratify=True).to_json()
    assert split_dataset(raw, _config(split_policy=other_seed)).holdout_digest != splits.holdout_digest


def test_a_temporal_policy_holds_out_the_newest_rows(frame: pd.DataFrame) -> None:
    raw = frame.drop(columns="split").sample(frac=1, random_state=0)
    policy = SplitPolicy.temporal_by("event_timestamp", validation=0.1, holdout=0.25)
    splits = split_dataset(raw, _config(split_policy=policy.to_json()))
    assert splits.holdout is not None and len(splits.holdout) == 150
    assert splits.holdout["event_timestamp"].min() > splits.validation["event_timestamp"].max()
    assert splits.validation["event_timestamp"].min() > splits.train["event_timestamp"].max()
    with pytest.raises(TrainerInputError, match=r"missing columns \['event_time'\]"):
        split_dataset(raw, _config(split_policy=SplitPolicy.temporal_by("event_time").to_json()))


def test_a_policy_that_cannot_split_the_dataset_is_bad_input(frame: pd.DataFrame) -> None:
    raw = frame.drop(columns="split")
    with pytest.raises(TrainerInputError, match=r"missing columns \['split'\]"):
        split_dataset(raw, _config())
    gaps = raw.copy()
    gaps.loc[[2, 4], "event_timestamp"] = pd.NaT
    temporal = SplitPolicy.temporal_by("event_timestamp").to_json()
    with pytest.raises(TrainerInputError, match=r"cannot split the dataset with \{.*\}: time column .* 2 missing"):
        split_dataset(gaps, _config(split_policy=temporal))
    no_validation = SplitPolicy.random_by(seed=0, validation=0.0).to_json()
    with pytest.raises(TrainerInputError, match=r"\"kind\":\"random\".* has no 'validation' rows \(of 600\)"):
        split_dataset(raw, _config(split_policy=no_validation))


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
