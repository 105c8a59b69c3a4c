"""Point-in-time training sets from a spine (entity ids, timestamps, labels), without losing rows silently.

Feast 0.67 drops spine rows that have no feature row within the TTL, returns rows out of order, and keeps
only one of several spine rows that share an entity and a timestamp. So the spine is reduced to unique
(entity, timestamp) keys, each with a key id; features come back by key id; every spine row gets its key's
features, in the spine's order; and rows that lack a feature are counted and handled by an explicit policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from airflow_mlops_provider.core.features.batches import FEAST_DTYPES, to_utc, utc_timestamps
from airflow_mlops_provider.core.io.datasets import dataset_files, read_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore

MISSING_ACTIONS = ("drop", "fill", "fail")
#: The key id column sent to the feature store with the unique spine keys.
KEY_COLUMN = "__mlops_key"
NUMERIC_DTYPES = frozenset(name for name, dtype in FEAST_DTYPES.items() if dtype.expected in ("integer", "number"))


class MissingFeaturesError(ValueError):
    """Too many spine rows lack features for the policy."""


@dataclass(frozen=True)
class MissingFeaturesPolicy:
    """What to do with spine rows that lack a value for some feature (no feature row within the TTL).

    :param action: ``drop`` the rows, ``fill`` them, or ``fail`` if there is any.
    :param max_fraction: fail when more than this fraction of spine rows lack features, whatever the action.
    :param fill_values: feature -> value used by ``fill``; numeric features without one get 0, the others
        stay null (the trainer encodes a null category as missing).
    """

    action: str = "drop"
    max_fraction: float = 0.05
    fill_values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in MISSING_ACTIONS:
            raise ValueError(f"missing-features action must be one of {MISSING_ACTIONS}, not {self.action!r}")
        if not 0.0 <= self.max_fraction <= 1.0:
            raise ValueError(f"max_fraction must be in [0, 1], got {self.max_fraction}")


@dataclass(frozen=True)
class PointInTimeResult:
    """A training frame and how its spine rows fared.

    :param frame: spine columns then features, in the spine's row order.
    :param missing: spine rows that lacked a value for some feature.
    :param dropped: rows left out of ``frame`` (the missing ones, under ``drop``).
    :param filled: rows whose missing values were filled (under ``fill``).
    """

    frame: pd.DataFrame
    missing: int
    dropped: int
    filled: int


@dataclass(frozen=True)
class TimeWindow:
    """A half-open time window ``[start, end)``; ``None`` leaves a side open.

    :param start: the first instant in the window.
    :param end: the first instant after it.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    @property
    def label(self) -> str:
        """ISO 8601 interval, ``..`` for an open side: ``2024-01-01T00:00:00+00:00/..``."""
        return "/".join(".." if side is None else side.isoformat() for side in (self.start, self.end))


def parse_window(start: str | None, end: str | None) -> TimeWindow:
    """Parse window bounds; a naive time is taken as UTC, an empty one as open.

    :param start: e.g. ``2024-01-01T00:00:00+00:00``.
    :param end: e.g. ``2024-01-08``.
    :raises ValueError: unparseable bounds, or ``start`` not before ``end``.
    """
    window = TimeWindow(*(to_utc(value) if value else None for value in (start, end)))
    if window.start is not None and window.end is not None and window.start >= window.end:
        raise ValueError(f"window start {window.start} is not before its end {window.end}")
    return window


def load_spine(
    uri: str,
    entities: Sequence[str],
    timestamp: str,
    labels: Sequence[str],
    window: TimeWindow = TimeWindow(),
    store: ObjectStore | None = None,
) -> pd.DataFrame:
    """Read a spine file, or every parquet/CSV file under a ``/``-terminated directory, in name order.

    :param uri: the spine's path or URI.
    :param entities: the entity key columns.
    :param timestamp: the event timestamp column.
    :param labels: the label columns to keep.
    :param window: keep rows in this window.
    :param store: the store to read through.
    :raises FileNotFoundError: no spine file at ``uri``.
    """
    store = store or ObjectStore()
    frames = []
    for file in dataset_files(uri, store):
        try:
            frames.append(prepare_spine(read_dataset(file, store), entities, timestamp, labels, window))
        except ValueError as err:
            raise ValueError(f"spine file {file}: {err}") from err
    return pd.concat(frames, ignore_index=True)


def prepare_spine(
    spine: pd.DataFrame,
    entities: Sequence[str],
    timestamp: str,
    labels: Sequence[str],
    window: TimeWindow = TimeWindow(),
) -> pd.DataFrame:
    """Keep the spine's entity, timestamp and label columns, with UTC timestamps, inside ``[start, end)``.

    :param spine: the raw spine.
    :param entities: the entity key columns.
    :param timestamp: the event timestamp column.
    :param labels: the label columns to carry into the training set.
    :param window: keep rows in this window.
    :raises ValueError: missing columns, null entity keys, or naive timestamps.
    """
    columns = [*entities, timestamp, *labels]
    missing = [c for c in columns if c not in spine.columns]
    if missing:
        raise ValueError(f"spine is missing columns {missing}; it has {sorted(map(str, spine.columns))}")
    nulls = {c: int(n) for c in entities if (n := spine[c].isna().sum())}
    if nulls:
        raise ValueError(f"spine has null entity keys (rows per column: {nulls})")
    frame = spine[columns].assign(**{timestamp: utc_timestamps(spine[timestamp], timestamp)})
    keep = np.ones(len(frame), dtype=bool)
    if window.start is not None:
        keep &= (frame[timestamp] >= window.start).to_numpy()
    if window.end is not None:
        keep &= (frame[timestamp] < window.end).to_numpy()
    return frame[keep].reset_index(drop=True)


def point_in_time_join(
    spine: pd.DataFrame,
    fetch: Callable[[pd.DataFrame], pd.DataFrame],
    entities: Sequence[str],
    timestamp: str,
    features: Mapping[str, str],
    policy: MissingFeaturesPolicy,
) -> PointInTimeResult:
    """Join features onto every spine row as of its timestamp, in the spine's order.

    :param spine: entity keys, UTC timestamps and labels (see :func:`prepare_spine`).
    :param fetch: given the unique keys (entity columns, timestamp, :data:`KEY_COLUMN`), returns
        :data:`KEY_COLUMN` and the feature columns, for the keys it found, in any order.
    :param entities: the entity key columns.
    :param timestamp: the event timestamp column.
    :param features: feature -> Feast dtype name, as served.
    :param policy: what to do with rows that lack features.
    :raises MissingFeaturesError: the policy refuses the missing rows.
    """
    fill = _fill_values(features, policy) if policy.action == "fill" else {}
    if spine.empty:
        raise MissingFeaturesError("the spine has no rows (in the window): nothing to build a training set from")
    clash = sorted(set(spine.columns) & set(features))
    if clash:
        raise ValueError(f"spine columns {clash} have the names of served features; rename them")
    codes = spine.groupby([*entities, timestamp], sort=False).ngroup().to_numpy()
    first = ~pd.Series(codes).duplicated().to_numpy()
    keys = spine.loc[first, [*entities, timestamp]].assign(**{KEY_COLUMN: codes[first]})
    fetched = fetch(keys.reset_index(drop=True))
    absent = [c for c in [KEY_COLUMN, *features] if c not in fetched.columns]
    if absent:
        raise ValueError(f"the feature store returned no columns {absent}")
    if fetched[KEY_COLUMN].duplicated().any():
        raise ValueError("the feature store returned several rows for one spine key")
    values = fetched.set_index(KEY_COLUMN)[list(features)].reindex(codes).reset_index(drop=True)
    incomplete = values.isna().any(axis=1).to_numpy()
    missing = int(incomplete.sum())
    _enforce(policy, missing, len(spine))
    frame = pd.concat([spine.reset_index(drop=True), values], axis=1)
    if policy.action == "drop":
        frame = frame[~incomplete].reset_index(drop=True)
    elif missing:
        frame = frame.fillna(fill)
    for name, dtype_name in features.items():
        dtype = FEAST_DTYPES.get(dtype_name)
        if dtype is not None and not frame[name].isna().any():
            frame[name] = frame[name].astype(dtype.pandas_dtype)
    dropped = missing if policy.action == "drop" else 0
    return PointInTimeResult(frame, missing, dropped, missing - dropped)


def _enforce(policy: MissingFeaturesPolicy, missing: int, total: int) -> None:
    fraction = missing / total
    if missing and (policy.action == "fail" or fraction > policy.max_fraction):
        allowed = "none" if policy.action == "fail" else f"at most {policy.max_fraction:.2%}"
        raise MissingFeaturesError(
            f"{missing} of {total} spine rows ({fraction:.2%}) have no feature row within the TTL (or a null "
            f"feature); policy {policy.action!r} allows {allowed}"
        )


def _fill_values(features: Mapping[str, str], policy: MissingFeaturesPolicy) -> dict[str, Any]:
    unknown = sorted(set(policy.fill_values) - set(features))
    if unknown:
        raise ValueError(f"fill values given for {unknown}, which are not served features")
    numeric = {name for name, dtype in features.items() if dtype in NUMERIC_DTYPES}
    return {**dict.fromkeys(numeric, 0), **policy.fill_values}
