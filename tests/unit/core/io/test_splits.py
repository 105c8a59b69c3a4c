"""Split policies: one definition of train/validation/holdout that trainer, promotion and drift apply alike."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.contracts import Split
from airflow_mlops_provider.core.io.datasets import dataset_digest
from airflow_mlops_provider.core.io.splits import SplitError, SplitPolicy, temporal_split
from tests.paths import REPO


@pytest.fixture
def frame() -> pd.DataFrame:
    """1000 rows in shuffled time order, a 20% positive binary label, and a non-default index."""
    rng = np.random.default_rng(5)
    n = 1000
    times = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), unit="min")
    label = np.zeros(n, dtype=np.int64)
    label[rng.choice(n, 200, replace=False)] = 1
    return pd.DataFrame({"event_time": times, "x": rng.normal(size=n), "label": label}, index=np.arange(n) * 3 + 7)


def _counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels.astype(str), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


# --- construction and JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "kfold"}, "split kind must be one of"),
        ({"column": ""}, "non-empty name"),
        ({"column": 3}, "non-empty name"),
        ({"kind": "temporal"}, "a temporal split needs time_column"),
        ({"kind": "temporal", "time_column": ""}, "a temporal split needs time_column"),
        ({"kind": "random", "time_column": "t"}, "time_column applies to a temporal split only"),
        ({"kind": "temporal", "time_column": "split"}, "the time column and the split column are both 'split'"),
        ({"kind": "random", "validation": -0.1}, "validation and holdout must be numbers >= 0 with a sum < 1"),
        ({"kind": "random", "validation": 0.5, "holdout": 0.5}, "with a sum < 1"),
        ({"kind": "random", "holdout": "0.2"}, "must be numbers"),
        ({"kind": "random", "holdout": True}, "must be numbers"),
        ({"kind": "random", "seed": 1.5}, "seed must be an integer"),
        ({"kind": "random", "seed": False}, "seed must be an integer"),
        ({"kind": "random", "stratify": "yes"}, "stratify must be true or false"),
        ({"kind": "column", "stratify": True}, "stratify applies to a random split only"),
        ({"kind": "temporal", "time_column": "t", "stratify": True}, "stratify applies to a random split only"),
    ],
)
def test_invalid_policies_are_refused_at_construction(fields: dict[str, object], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        SplitPolicy(**fields)  # type: ignore[arg-type]
    with pytest.raises(SplitError, match=message):
        SplitPolicy.from_json(json.dumps(fields))


def test_builders() -> None:
    assert SplitPolicy() == SplitPolicy.existing() == SplitPolicy("column", Split.COLUMN)
    assert SplitPolicy.existing("fold").column == "fold" and SplitPolicy.existing().reads_column
    temporal = SplitPolicy.temporal_by("ts", validation=0.1, holdout=0.2, column="fold")
    assert (temporal.kind, temporal.time_column, temporal.validation, temporal.holdout, temporal.column) == (
        "temporal", "ts", 0.1, 0.2, "fold",
    )  # fmt: skip
    random = SplitPolicy.random_by(seed=3, validation=0.25, holdout=0.1, stratify=True)
    assert (random.kind, random.seed, random.validation, random.holdout, random.stratify) == (
        "random", 3, 0.25, 0.1, True,
    )  # fmt: skip
    assert not random.reads_column and not temporal.reads_column


@pytest.mark.parametrize(
    "policy",
    [
        SplitPolicy.existing("fold"),
        SplitPolicy.temporal_by("ts", 0.1, 0.3),
        SplitPolicy.random_by(seed=42, validation=0.2, holdout=0, stratify=True, column="part"),
    ],
)
def test_json_round_trip_is_compact_and_sorted(policy: SplitPolicy) -> None:
    text = policy.to_json()
    assert SplitPolicy.from_json(text) == policy
    assert " " not in text and list(json.loads(text)) == sorted(json.loads(text))
    assert json.loads(text) == policy.to_dict()


def test_json_fields_left_out_take_their_defaults() -> None:
    assert SplitPolicy.from_json('{"kind": "random", "seed": 7}') == SplitPolicy.random_by(seed=7)
    assert SplitPolicy.from_json("{}") == SplitPolicy.existing()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("random", "a split policy must be JSON"),
        ("", "a split policy must be JSON"),
        ('["random"]', "must be a JSON object"),
        ('"random"', "must be a JSON object"),
        ('{"kind": "random", "shuffle": true}', "not a split policy.*shuffle"),
    ],
)
def test_from_json_refuses_what_is_not_a_policy(text: str, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        SplitPolicy.from_json(text)


def test_split_error_is_a_value_error() -> None:
    assert issubclass(SplitError, ValueError)


def test_importing_the_module_imports_neither_pandas_nor_numpy() -> None:
    """DAG files build policies at parse time: that must stay cheap."""
    code = (
        "import sys; from airflow_mlops_provider.core.io.splits import SplitPolicy; "
        "SplitPolicy.random_by(seed=0).to_json(); "
        "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- column --------------------------------------------------------------------------------------


def test_column_policy_reads_and_checks_the_column(frame: pd.DataFrame) -> None:
    data = temporal_split(frame, "event_time", column="fold")
    policy = SplitPolicy.existing("fold")
    assert policy.apply(data) is data
    assert list(policy.labels(data)) == list(data["fold"])
    with pytest.raises(SplitError, match="the dataset has no split column 'split': add one, or split it"):
        SplitPolicy.existing().apply(data)
    bad = data.assign(fold=data["fold"].replace({"holdout": "test"}))
    with pytest.raises(SplitError, match=r"must only hold .*found \['test'\]"):
        policy.apply(bad)
    missing = data.astype({"fold": object})
    missing.iloc[3, missing.columns.get_loc("fold")] = None
    with pytest.raises(SplitError, match=r"found \['<missing>'\]"):
        policy.partition(missing)


# --- temporal ------------------------------------------------------------------------------------


def test_temporal_policy_holds_out_the_newest_rows(frame: pd.DataFrame) -> None:
    split = SplitPolicy.temporal_by("event_time", validation=0.2, holdout=0.1).apply(frame)
    assert split.index.equals(frame.index) and list(split.columns) == [*frame.columns, "split"]
    ordered = split.sort_values("event_time")["split"].tolist()
    assert ordered == ["train"] * 700 + ["validation"] * 200 + ["holdout"] * 100
    parts = SplitPolicy.temporal_by("event_time", validation=0.2, holdout=0.1).partition(frame)
    assert parts["train"]["event_time"].max() < parts["validation"]["event_time"].min()
    assert parts["validation"]["event_time"].max() < parts["holdout"]["event_time"].min()


def test_temporal_ties_keep_their_row_order() -> None:
    df = pd.DataFrame({"t": [2, 1, 1, 1, 2, 0], "row": range(6)})
    split = SplitPolicy.temporal_by("t", validation=1 / 6, holdout=2 / 6).apply(df)
    # by time, ties in row order: rows 5, 1, 2, 3, 0, 4
    assert split.set_index("row")["split"].to_dict() == {
        5: "train", 1: "train", 2: "train", 3: "validation", 0: "holdout", 4: "holdout",
    }  # fmt: skip


def test_temporal_split_function_is_the_temporal_policy(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        temporal_split(frame, "event_time", 0.1, 0.2, "fold"),
        SplitPolicy.temporal_by("event_time", 0.1, 0.2, "fold").apply(frame),
    )


def test_temporal_policy_errors(frame: pd.DataFrame) -> None:
    with pytest.raises(SplitError, match="the dataset has no time column 'ts'"):
        SplitPolicy.temporal_by("ts").apply(frame)
    gaps = frame.copy()
    gaps.iloc[[2, 9], gaps.columns.get_loc("event_time")] = pd.NaT
    with pytest.raises(SplitError, match="time column 'event_time' has 2 missing values"):
        SplitPolicy.temporal_by("event_time").apply(gaps)
    mixed = pd.DataFrame({"t": [1, "b", 2.5]})
    with pytest.raises(SplitError, match="time column 't' holds text, not ISO 8601 times"):
        SplitPolicy.temporal_by("t").apply(mixed)


def test_temporal_policy_orders_text_times_as_times() -> None:
    # Each day: 00:00 UTC, 23:00 at UTC-5 (04:00 UTC the next day) and 01:00 UTC. As text the newest three
    # would be the last day's; as times, the last day's 23:00-05:00 and 01:00Z, and the day before's 23:00-05:00.
    times = [f"2024-01-{day:02d}T{hour}" for day in range(1, 11) for hour in ("00:00Z", "23:00-05:00", "01:00Z")]
    labels = SplitPolicy.temporal_by("t", validation=0.0, holdout=0.1).labels(pd.DataFrame({"t": times}))
    held_out = {time for time, label in zip(times, labels, strict=True) if label == "holdout"}
    assert held_out == {"2024-01-10T23:00-05:00", "2024-01-09T23:00-05:00", "2024-01-10T01:00Z"}


# --- random --------------------------------------------------------------------------------------


def test_random_policy_is_deterministic_per_seed(frame: pd.DataFrame) -> None:
    first = SplitPolicy.random_by(seed=1).labels(frame)
    assert list(SplitPolicy.random_by(seed=1).labels(frame)) == list(first)
    assert list(SplitPolicy.random_by(seed=2).labels(frame)) != list(first)
    assert list(SplitPolicy.random_by(seed=1).labels(frame.copy())) == list(first)  # a fresh read: same split


def test_random_split_follows_row_content_not_position(frame: pd.DataFrame) -> None:
    policy = SplitPolicy.random_by(seed=3)
    base = pd.Series(policy.labels(frame), index=frame.index)
    shuffled = frame.sample(frac=1.0, random_state=0)
    assert (pd.Series(policy.labels(shuffled), index=shuffled.index).loc[frame.index] == base).all()
    # 10% more rows: the old rows keep their split, but for a few near the cut points
    more = pd.concat([frame, frame.assign(x=frame["x"] + 100).iloc[:100].set_axis(np.arange(100) + 10_000)])
    grown = pd.Series(policy.labels(more), index=more.index).loc[frame.index]
    assert (grown != base).mean() < 0.05
    assert not ((base == "train") & (grown == "holdout")).any()  # no trained-on row becomes a holdout row


def test_random_policy_fractions(frame: pd.DataFrame) -> None:
    assert _counts(SplitPolicy.random_by(seed=0, validation=0.2, holdout=0.15).labels(frame)) == {
        "train": 650, "validation": 200, "holdout": 150,
    }  # fmt: skip
    assert _counts(SplitPolicy.random_by(seed=0, validation=0.3, holdout=0).labels(frame)) == {
        "train": 700, "validation": 300,
    }  # fmt: skip
    held_out = np.flatnonzero(SplitPolicy.random_by(seed=0).labels(frame) == "holdout")
    assert (held_out < 500).any() and (held_out >= 500).any()  # shuffled, not the last rows


def test_stratified_random_policy_keeps_the_class_shares(frame: pd.DataFrame) -> None:
    policy = SplitPolicy.random_by(seed=4, validation=0.2, holdout=0.2, stratify=True)
    parts = policy.partition(frame, "label")
    assert {name: len(part) for name, part in parts.items()} == {"train": 600, "validation": 200, "holdout": 200}
    assert {name: int(part["label"].sum()) for name, part in parts.items()} == {
        "train": 120, "validation": 40, "holdout": 40,
    }  # fmt: skip
    assert list(policy.labels(frame, "label")) == list(policy.labels(frame, "label"))
    unstratified = SplitPolicy.random_by(seed=4, validation=0.2, holdout=0.2).partition(frame)
    assert [int(part["label"].sum()) for part in unstratified.values()] != [120, 40, 40]


def test_stratified_random_policy_errors(frame: pd.DataFrame) -> None:
    policy = SplitPolicy.random_by(stratify=True)
    with pytest.raises(SplitError, match="a stratified split needs the target column, got None"):
        policy.apply(frame)
    with pytest.raises(SplitError, match="needs the target column, got 'y'"):
        policy.apply(frame, "y")
    with pytest.raises(SplitError, match=r"needs a binary target.*'x' has 1000 distinct values and 0 missing"):
        policy.apply(frame, "x")
    single = frame.assign(label=1)
    with pytest.raises(SplitError, match="'label' has 1 distinct values"):
        policy.apply(single, "label")
    gaps = frame.astype({"label": float})
    gaps.iloc[0, gaps.columns.get_loc("label")] = np.nan
    with pytest.raises(SplitError, match="and 1 missing"):
        policy.apply(gaps, "label")


# --- partition: what trainer and promotion both digest ----------------------------------------------


def test_partition_keeps_the_datasets_own_columns_and_resets_the_index(frame: pd.DataFrame) -> None:
    parts = SplitPolicy.random_by(seed=0).partition(frame)
    assert list(parts) == list(Split.ALL)
    assert sum(len(part) for part in parts.values()) == len(frame)
    for part in parts.values():
        assert list(part.columns) == list(frame.columns)  # the written split column is not one of them
        assert part.index.equals(pd.RangeIndex(len(part)))
    rows = pd.concat(parts.values()).sort_values("event_time", ignore_index=True)
    pd.testing.assert_frame_equal(rows, frame.sort_values("event_time", ignore_index=True))


def test_the_same_data_and_policy_give_the_same_holdout_digest(frame: pd.DataFrame) -> None:
    policy = SplitPolicy.random_by(seed=9, stratify=True)
    digest = dataset_digest(policy.partition(frame, "label")[Split.HOLDOUT])
    assert dataset_digest(policy.partition(frame.copy(), "label")[Split.HOLDOUT]) == digest
    changed = frame.copy()
    holdout_row = np.flatnonzero(policy.labels(frame, "label") == Split.HOLDOUT)[0]
    changed.iloc[holdout_row, changed.columns.get_loc("x")] += 1.0
    assert dataset_digest(policy.partition(changed, "label")[Split.HOLDOUT]) != digest
    reordered = frame.iloc[::-1]
    assert dataset_digest(policy.partition(reordered, "label")[Split.HOLDOUT]) != digest


def test_an_empty_frame_splits_into_empty_parts(frame: pd.DataFrame) -> None:
    for policy in (SplitPolicy.random_by(seed=0), SplitPolicy.temporal_by("event_time")):
        assert all(part.empty for part in policy.partition(frame.iloc[:0]).values())
