"""The inputs of a drift check: the reference set's rows and digest, the current window, the columns."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_mlops_provider.core.drift.check import (
    DigestMismatchError,
    EmptyWindowError,
    ReferenceSet,
    feature_columns,
    load_window,
)
from airflow_mlops_provider.core.io.datasets import read_dataset
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
