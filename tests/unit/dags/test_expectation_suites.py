"""The suites shipped in dags/expectations: valid GX 1.x suites that pass on any correct demo data, drifted
or not, and stop broken data."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.validation.suites import load_suite, validate_frame
from demo import data as demo_data
from tests.paths import DAGS

EXPECTATIONS = DAGS / "expectations"


def shipped(name: str) -> dict[str, Any]:
    suite: dict[str, Any] = json.loads((EXPECTATIONS / f"{name}.json").read_text())
    return suite


def training_set(**kwargs: Any) -> pd.DataFrame:
    return demo_data.assign_splits(demo_data.generate_batch(2_000, days=7, **kwargs))


def test_every_shipped_suite_is_a_strict_gx_suite_named_after_its_file() -> None:
    paths = sorted(EXPECTATIONS.glob("*.json"))
    assert [p.stem for p in paths] == ["churn_raw_batch", "churn_training_set"]
    for path in paths:
        assert load_suite(json.loads(path.read_text())).name == path.stem


@pytest.mark.parametrize(
    "frame",
    [
        training_set(start="2031-01-05", seed=11),
        training_set(start="2026-06-01", seed=12, covariate_drift=1.0, concept_drift=1.0),
    ],
    ids=["future", "drifted"],
)
def test_training_set_suite_passes_on_correct_data(frame: pd.DataFrame) -> None:
    result = validate_frame(frame, shipped("churn_training_set"))
    assert result.success, result.message


def test_training_set_suite_stops_a_set_without_holdout_or_positives() -> None:
    frame = training_set(start="2026-06-01", seed=13)
    frame = frame[frame["split"] != "holdout"].assign(churned=0)
    messages = sorted(f.message for f in validate_frame(frame, shipped("churn_training_set")).failures)
    assert messages == [
        "column 'churned' lacks [1] of the required values [0, 1]",
        "column 'split' lacks ['holdout'] of the required values ['holdout', 'train', 'validation']",
    ]


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_raw_batch_suite_passes_on_drifted_batches_in_either_format(file_format: str) -> None:
    batch = demo_data.generate_batch(1_000, "2030-02-01", seed=21, covariate_drift=1.0)
    if file_format == "csv":  # what ingestion reads from a CSV batch: timestamps as ISO strings
        batch = pd.read_csv(io.StringIO(batch.to_csv(index=False)))
    result = validate_frame(batch, shipped("churn_raw_batch"))
    assert result.success, result.message


def test_raw_batch_suite_stops_broken_batches() -> None:
    batch = demo_data.generate_batch(1_000, "2030-02-01", seed=22)
    broken = pd.concat([batch, batch.head(3)]).drop(columns=["region"]).assign(churned=lambda d: d["churned"] * 2)
    messages = "\n".join(f.message for f in validate_frame(broken, shipped("churn_raw_batch")).failures)
    assert "column 'region' is missing" in messages
    assert "column 'churned' has" in messages and "not in [0, 1]" in messages
    assert "expect_compound_columns_to_be_unique failed on the table: 6 values" in messages
