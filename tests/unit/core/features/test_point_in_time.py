"""Joining features back onto a spine: order, duplicates, and the missing-features policies.

The feature store is a stand-in here that misbehaves like Feast 0.67 (drops keys, shuffles rows); the real
Feast join is checked against a merge_asof oracle in tests/integration/test_feast_features.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.features.point_in_time import (
    KEY_COLUMN,
    MissingFeaturesError,
    MissingFeaturesPolicy,
    PointInTimeResult,
    TimeWindow,
    load_spine,
    parse_window,
    point_in_time_join,
    prepare_spine,
)
from airflow_mlops_provider.core.io.splits import temporal_split

FEATURES = {"tenure": "Int64", "plan": "String"}
T0 = pd.Timestamp("2024-01-01T00:00Z")
DROP_ANY = MissingFeaturesPolicy("drop", max_fraction=1.0)


@pytest.fixture
def spine() -> pd.DataFrame:
    """Ten rows; rows 3 and 4 share an entity and a timestamp but not a label; entity 9 has no features."""
    ids = [1, 2, 3, 4, 4, 5, 6, 7, 8, 9]
    stamps = [T0 + pd.Timedelta(hours=h) for h in (5, 1, 9, 2, 2, 7, 3, 8, 4, 6)]
    return pd.DataFrame({"customer_id": ids, "event_timestamp": stamps, "label": [0, 1, 0, 1, 0, 1, 1, 0, 1, 0]})


def feast_like(keys: pd.DataFrame) -> pd.DataFrame:
    """Serve tenure = customer id and plan = "p<id>", drop entity 9 and return rows sorted by time."""
    served = keys[keys["customer_id"] != 9].sort_values("event_timestamp")
    return served.assign(tenure=served["customer_id"] * 10, plan="p" + served["customer_id"].astype(str))


def join(
    spine: pd.DataFrame,
    fetch: Callable[[pd.DataFrame], pd.DataFrame] = feast_like,
    policy: MissingFeaturesPolicy = DROP_ANY,
) -> PointInTimeResult:
    return point_in_time_join(spine, fetch, ["customer_id"], "event_timestamp", FEATURES, policy)


def test_every_spine_row_gets_its_features_in_spine_order(spine: pd.DataFrame) -> None:
    seen: list[pd.DataFrame] = []

    def fetch(keys: pd.DataFrame) -> pd.DataFrame:
        seen.append(keys)
        return feast_like(keys)

    result = join(spine, fetch)
    assert len(seen[0]) == 9 and not seen[0][["customer_id", "event_timestamp"]].duplicated().any()
    assert set(seen[0].columns) == {"customer_id", "event_timestamp", KEY_COLUMN}
    expected = spine[spine["customer_id"] != 9].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.frame[list(spine.columns)], expected)
    assert result.frame["tenure"].tolist() == (expected["customer_id"] * 10).tolist()
    assert result.frame["tenure"].dtype == np.int64
    assert (result.missing, result.dropped, result.filled) == (1, 1, 0)


def test_a_null_feature_counts_as_missing(spine: pd.DataFrame) -> None:
    def fetch(keys: pd.DataFrame) -> pd.DataFrame:
        served = feast_like(keys)
        return served.assign(plan=served["plan"].where(served["customer_id"] != 2))

    result = join(spine, fetch)
    assert result.missing == 2 and sorted(set(spine["customer_id"]) - set(result.frame["customer_id"])) == [2, 9]


def test_fill_keeps_every_row_with_explicit_or_zero_values(spine: pd.DataFrame) -> None:
    policy = MissingFeaturesPolicy("fill", max_fraction=0.1, fill_values={"plan": "unknown"})
    result = join(spine, policy=policy)
    assert len(result.frame) == len(spine) and (result.missing, result.dropped, result.filled) == (1, 0, 1)
    filled = result.frame[result.frame["customer_id"] == 9].iloc[0]
    assert (filled["tenure"], filled["plan"]) == (0, "unknown")
    assert result.frame["tenure"].dtype == np.int64


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (MissingFeaturesPolicy("fail", max_fraction=1.0), r"1 of 10 spine rows \(10\.00%\).*policy 'fail' allows none"),
        (MissingFeaturesPolicy("drop", max_fraction=0.05), r"policy 'drop' allows at most 5\.00%"),
        (MissingFeaturesPolicy("fill", max_fraction=0.0), r"policy 'fill' allows at most 0\.00%"),
    ],
)
def test_policies_refuse_too_many_missing_rows(
    spine: pd.DataFrame, policy: MissingFeaturesPolicy, message: str
) -> None:
    with pytest.raises(MissingFeaturesError, match=message):
        join(spine, policy=policy)


def test_policy_and_store_errors_are_explicit(spine: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="one of"):
        MissingFeaturesPolicy("ignore")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        MissingFeaturesPolicy(max_fraction=2)
    with pytest.raises(ValueError, match=r"fill values given for \['nope'\]"):
        join(spine, policy=MissingFeaturesPolicy("fill", 1, {"nope": 1}))
    with pytest.raises(ValueError, match="several rows for one spine key"):
        join(spine, lambda keys: pd.concat([feast_like(keys)] * 2))
    with pytest.raises(ValueError, match=r"spine columns \['plan'\] have the names of served features"):
        join(spine.assign(plan="x"))
    with pytest.raises(MissingFeaturesError, match="no rows"):
        join(spine.iloc[:0])


def test_prepare_spine_keeps_the_window_and_the_needed_columns(spine: pd.DataFrame) -> None:
    raw = spine.assign(extra=1, event_timestamp=spine["event_timestamp"].map(lambda t: t.isoformat()))
    window = parse_window("2024-01-01T02:00:00", "2024-01-01T06:00:00+00:00")
    kept = prepare_spine(raw, ["customer_id"], "event_timestamp", ["label"], window)
    assert list(kept.columns) == ["customer_id", "event_timestamp", "label"]
    assert kept["customer_id"].tolist() == [1, 4, 4, 6, 8]  # [02:00, 06:00), in spine order
    with pytest.raises(ValueError, match=r"missing columns \['churned'\]"):
        prepare_spine(spine, ["customer_id"], "event_timestamp", ["churned"])
    with pytest.raises(ValueError, match="null entity keys"):
        no_id = spine.assign(customer_id=spine["customer_id"].where(spine.index > 0))
        prepare_spine(no_id, ["customer_id"], "event_timestamp", ["label"])


def test_windows_parse_and_label_as_iso_intervals() -> None:
    assert parse_window("2024-01-01", "").label == "2024-01-01T00:00:00+00:00/.."
    assert TimeWindow().label == "../.."
    with pytest.raises(ValueError, match="not before"):
        parse_window("2024-01-02", "2024-01-01")


def test_a_spine_directory_is_read_file_by_file_in_name_order(tmp_path: Path, spine: pd.DataFrame) -> None:
    spine.iloc[5:].to_parquet(tmp_path / "b.parquet")
    spine.iloc[:5].assign(event_timestamp=spine["event_timestamp"].iloc[:5].map(str)).to_csv(tmp_path / "a.csv")
    (tmp_path / "notes.txt").write_text("not a spine")
    loaded = load_spine(f"{tmp_path}/", ["customer_id"], "event_timestamp", ["label"])
    pd.testing.assert_frame_equal(loaded, spine)
    with pytest.raises(FileNotFoundError, match="no parquet or CSV files under"):
        load_spine(f"{tmp_path}/empty/", ["customer_id"], "event_timestamp", ["label"])


def test_temporal_split_holds_out_the_newest_rows(spine: pd.DataFrame) -> None:
    split = temporal_split(spine, "event_timestamp", validation=0.2, holdout=0.3, column="fold")
    order = split.sort_values("event_timestamp", kind="stable")["fold"].tolist()
    assert order == ["train"] * 5 + ["validation"] * 2 + ["holdout"] * 3
    assert split.index.equals(spine.index)
