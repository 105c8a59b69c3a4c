"""The inputs of a drift check: the reference set's rows and digest, the current window, the columns."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from airflow_mlops_provider.contracts import RunParam, Tag
from airflow_mlops_provider.core.drift.check import (
    DigestMismatchError,
    EmptyWindowError,
    ReferenceSet,
    aliased_training_set,
    feature_columns,
    load_window,
)
from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset, write_dataset
from airflow_mlops_provider.core.io.splits import SplitError, SplitPolicy
from tests.fixtures.drift_data import DriftData, write_drift_data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"), rows=1000)


def test_reference_keeps_training_rows_and_checks_the_digest(data: DriftData) -> None:
    frame = ReferenceSet(data.reference, data.reference_digest).load()
    assert set(frame["split"]) == {"train"} and len(frame) == 700
    assert len(ReferenceSet(data.reference, split_value=None).load()) == 1000
    with pytest.raises(DigestMismatchError):
        ReferenceSet(data.reference, "0" * 16).load()


def test_window_bounds_and_lookback(data: DriftData) -> None:
    times = read_dataset(data.clean)["event_timestamp"]
    half_day = load_window(data.clean, None, "event_timestamp", "2026-01-08T00:00:00", "2026-01-08T12:00:00")
    assert len(half_day) == (times < "2026-01-08T12:00:00+00:00").sum()
    recent = load_window(data.clean, None, "event_timestamp", lookback=timedelta(hours=6))
    assert len(recent) == (times > times.max() - timedelta(hours=6)).sum()
    with pytest.raises(EmptyWindowError):
        load_window(data.clean, None, "event_timestamp", start="2030-01-01")
    with pytest.raises(ValueError, match="time_column"):
        load_window(data.clean, lookback=timedelta(hours=1))


def test_default_columns_skip_ids_times_and_excluded(data: DriftData) -> None:
    reference, current = ReferenceSet(data.reference).load(), read_dataset(data.clean)
    columns = feature_columns(reference, current, exclude=["churned", "split"])
    assert columns == ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "plan", "region"]
    assert feature_columns(reference, current, ["plan"]) == ["plan"]


def test_reference_with_a_policy_keeps_the_rows_the_policy_trains_on(data: DriftData, tmp_path: Path) -> None:
    """A training set without a split column: the model's policy says which rows it learned from."""
    raw = read_dataset(data.reference).drop(columns="split")
    uri = str(tmp_path / "raw.parquet")
    digest = write_dataset(raw, uri)
    policy = SplitPolicy.random_by(seed=0, validation=0.2, holdout=0.1, stratify=True)
    frame = ReferenceSet(uri, digest, target="churned", split=policy).load()
    pd.testing.assert_frame_equal(frame, policy.partition(raw, "churned")["train"])
    assert len(frame) == 700 and "split" not in frame.columns
    held_out = ReferenceSet(uri, digest, target="churned", split=policy, split_value="holdout").load()
    assert len(held_out) == 100 and held_out["churned"].mean() == pytest.approx(raw["churned"].mean(), abs=0.01)
    assert len(ReferenceSet(uri, split=policy, split_value=None).load()) == 1000
    with pytest.raises(SplitError, match="needs the target column"):
        ReferenceSet(uri, split=policy).load()
    with pytest.raises(ValueError, match=r"has no 'test' rows under \{"):
        ReferenceSet(uri, target="churned", split=policy, split_value="test").load()


def test_a_reference_whose_split_does_not_reproduce_the_trainers_holdout_is_refused(
    data: DriftData, tmp_path: Path
) -> None:
    raw = read_dataset(data.reference).drop(columns="split")
    uri = str(tmp_path / "raw.parquet")
    digest = write_dataset(raw, uri)
    policy = SplitPolicy.random_by(seed=0)
    trainers = dataset_digest(policy.partition(raw)["holdout"])
    assert len(ReferenceSet(uri, digest, split=policy, holdout_digest=trainers).load()) == 700
    other_seed = SplitPolicy.random_by(seed=1)  # e.g. a split computed differently than at training time
    with pytest.raises(DigestMismatchError, match="not the rows it trained on"):
        ReferenceSet(uri, digest, split=other_seed, holdout_digest=trainers).load()


def test_reference_without_a_policy_filters_the_split_column_only_when_present(data: DriftData, tmp_path: Path) -> None:
    raw = read_dataset(data.reference).drop(columns="split")
    uri = str(tmp_path / "raw.parquet")
    write_dataset(raw, uri)
    assert len(ReferenceSet(uri).load()) == 1000


class _Client:
    """An MLflow client with one champion version and its run."""

    def __init__(self, params: dict[str, str]) -> None:
        self.params = params

    def get_model_version_by_alias(self, name: str, alias: str) -> SimpleNamespace:
        return SimpleNamespace(version=4)

    def get_model_version(self, name: str, version: str) -> SimpleNamespace:
        tags = {Tag.DATASET_URI: "s3://b/set.parquet", Tag.DATASET_DIGEST: "d1", Tag.HOLDOUT_DIGEST: "h1"}
        return SimpleNamespace(run_id="r4", tags=tags)

    def get_run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(params=self.params))


def test_the_champions_reference_carries_its_runs_split_policy() -> None:
    policy = SplitPolicy.temporal_by("event_timestamp", column="fold")
    params = {RunParam.TARGET: "churned", RunParam.SPLIT_POLICY: policy.to_json(), RunParam.SPLIT_COLUMN: "fold"}
    reference = aliased_training_set(_Client(params), "churn")  # type: ignore[arg-type]
    assert (reference.uri, reference.digest, reference.model_version) == ("s3://b/set.parquet", "d1", "4")
    assert (reference.split, reference.split_column, reference.split_value) == (policy, "fold", "train")
    assert reference.holdout_digest == "h1"
    legacy = aliased_training_set(_Client({RunParam.SPLIT_COLUMN: "fold"}), "churn")  # type: ignore[arg-type]
    assert (legacy.split, legacy.split_column) == (None, "fold")
    with pytest.raises(SplitError, match="split kind must be one of"):
        aliased_training_set(_Client({RunParam.SPLIT_POLICY: '{"kind": "kfold"}'}), "churn")  # type: ignore[arg-type]


def test_a_window_keeps_a_row_exactly_at_its_start_and_drops_one_exactly_at_its_end(tmp_path: Path) -> None:
    times = pd.to_datetime(["2026-01-08T00:00:00Z", "2026-01-08T06:00:00Z", "2026-01-08T12:00:00Z"])
    path = str(tmp_path / "edges.parquet")
    write_dataset(pd.DataFrame({"event_timestamp": times, "x": [1.0, 2.0, 3.0]}), path)
    window = load_window(path, None, "event_timestamp", "2026-01-08T00:00:00Z", "2026-01-08T12:00:00Z")
    assert window["x"].tolist() == [1.0, 2.0]  # [start, end): the start row in, the end row out
    assert load_window(path, None, "event_timestamp", "2026-01-08T12:00:00Z")["x"].tolist() == [3.0]
    with pytest.raises(EmptyWindowError):
        load_window(path, None, "event_timestamp", end="2026-01-08T00:00:00Z")


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        ("2026-01-09", "2026-01-08", "window start 2026-01-09 is not before its end 2026-01-08"),
        ("2026-01-08", "2026-01-08", "is not before its end"),
        ("soon", None, "window start 'soon' is not a time"),
    ],
)
def test_a_bad_window_is_refused_before_anything_is_read(start: str, end: str | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_window("/nonexistent/never-read.parquet", None, "event_timestamp", start, end)


def test_a_summary_lists_at_most_its_cap_of_columns_drifted_first() -> None:
    from airflow_mlops_provider.core.drift.check import SUMMARY_COLUMNS, drift_summary
    from airflow_mlops_provider.core.drift.compute import ColumnDrift, DriftResult

    columns = tuple(
        ColumnDrift(f"c{i}", "num", "ks", 0.05, 0.01 if i % 3 == 0 else 0.5, i % 3 == 0)
        for i in range(3 * SUMMARY_COLUMNS)
    )
    summary = drift_summary(ReferenceSet("ref.parquet"), "cur.parquet", "w", DriftResult(columns, 0.5, 100, 100))
    assert summary["columns_tested"] == 3 * SUMMARY_COLUMNS
    assert [c["column"] for c in summary["columns"]] == [f"c{i}" for i in range(0, 3 * SUMMARY_COLUMNS, 3)]
    assert summary["drifted_columns"] == [f"c{i}" for i in range(0, 3 * SUMMARY_COLUMNS, 3)]
    assert summary["share"] == pytest.approx(1 / 3)  # the verdicts count every column
    assert len(json.dumps(summary)) < 20_000
