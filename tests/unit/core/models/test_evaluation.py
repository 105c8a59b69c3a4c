"""The holdout rows promotion scores on are the trainer's, by the same split policy, and checked by digest.

Scoring a logged model against a real MLflow server is in tests/integration/test_training_and_registry.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.io.datasets import dataset_digest
from airflow_mlops_provider.core.io.splits import SplitError, SplitPolicy
from airflow_mlops_provider.core.models.evaluation import HoldoutMismatchError, check_holdout, holdout_rows
from airflow_mlops_provider.training.data import split_dataset
from airflow_mlops_provider.training.options import TrainConfig
from demo.data import FEATURES_CATEGORICAL, FEATURES_NUMERIC, TARGET, assign_splits, generate_batch


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """A churn dataset without a split column."""
    return generate_batch(800, "2026-02-01", days=4, seed=8)


def _trainers_holdout(df: pd.DataFrame, policy: SplitPolicy) -> tuple[pd.DataFrame | None, str]:
    config = TrainConfig(
        data_uri="d.parquet",
        target=TARGET,
        problem_type="binary",
        numeric_features=tuple(FEATURES_NUMERIC),
        categorical_features=tuple(FEATURES_CATEGORICAL),
        split_policy=policy.to_json(),
    )
    splits = split_dataset(df, config)
    return splits.holdout, splits.holdout_digest


@pytest.mark.parametrize(
    "policy",
    [
        SplitPolicy.random_by(seed=0, stratify=True),
        SplitPolicy.random_by(seed=5),
        SplitPolicy.temporal_by("event_timestamp"),
    ],
)
def test_holdout_rows_are_the_rows_the_trainer_held_out(raw: pd.DataFrame, policy: SplitPolicy) -> None:
    held_out, digest = _trainers_holdout(raw, policy)
    rows = holdout_rows(raw, policy, TARGET)
    assert held_out is not None
    pd.testing.assert_frame_equal(rows, held_out)
    assert check_holdout(rows, digest) == digest == dataset_digest(rows)


def test_holdout_rows_of_a_split_column(raw: pd.DataFrame) -> None:
    data = assign_splits(raw)
    held_out, digest = _trainers_holdout(data, SplitPolicy.existing())
    rows = holdout_rows(data, SplitPolicy.existing(), TARGET)
    assert set(rows["split"]) == {"holdout"} and len(rows) == 120
    assert held_out is not None
    pd.testing.assert_frame_equal(rows, held_out)
    assert check_holdout(rows, digest) == digest


def test_changed_rows_are_not_the_held_out_rows(raw: pd.DataFrame) -> None:
    policy = SplitPolicy.random_by(seed=0, stratify=True)
    _, digest = _trainers_holdout(raw, policy)
    changed = raw.copy()
    changed.loc[np.flatnonzero(policy.labels(raw, TARGET) == "holdout")[:3], "usage_gb"] += 1.0
    rows = holdout_rows(changed, policy, TARGET)
    with pytest.raises(HoldoutMismatchError) as caught:
        check_holdout(rows, digest, "s3://b/h.parquet")
    message = str(caught.value)
    assert "the holdout rows of s3://b/h.parquet differ from the rows the trainer held out" in message
    assert f"their digest is {dataset_digest(rows)}, the trainer recorded {digest} (120 rows here)" in message
    other_seed = holdout_rows(raw, SplitPolicy.random_by(seed=1, stratify=True), TARGET)
    with pytest.raises(HoldoutMismatchError):
        check_holdout(other_seed, digest)
    more_rows = pd.concat([raw, raw.head(10)], ignore_index=True)
    with pytest.raises(HoldoutMismatchError):
        check_holdout(holdout_rows(more_rows, policy, TARGET), digest)


def test_holdout_rows_errors(raw: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="holdout data has no target column 'churned'"):
        holdout_rows(raw.drop(columns=TARGET), SplitPolicy.random_by(), TARGET)
    with pytest.raises(SplitError, match="no split column 'split'"):
        holdout_rows(raw, SplitPolicy.existing(), TARGET)
    with pytest.raises(ValueError, match=r"no 'holdout' rows under the split policy \{.*\"holdout\":0"):
        holdout_rows(raw, SplitPolicy.random_by(holdout=0), TARGET)
    unlabelled = raw.astype({TARGET: float})
    unlabelled[TARGET] = np.nan
    with pytest.raises(ValueError, match="holdout data has 120 rows without a 'churned' label"):
        holdout_rows(unlabelled, SplitPolicy.random_by(), TARGET)
