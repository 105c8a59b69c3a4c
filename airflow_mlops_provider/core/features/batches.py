"""Raw feature batches: read one, check it against a feature view's schema before anything is written, and
archive the ingested ones out of the landing zone.

Every problem of a batch is reported at once, in one :class:`BatchValidationError` that names the batch,
the view and the columns at fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
from pandas.api import types as ptypes

from airflow_mlops_provider.core.features.specs import FeatureViewSpec
from airflow_mlops_provider.core.io.datasets import read_batch
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.io.urls import moved_uri

_TZ_SUFFIX = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._=-]+")
#: How far past the current time an event timestamp may be (clocks of source systems drift a little).
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=15)
#: How many duplicated keys a message names.
_KEYS_SHOWN = 3


class BatchValidationError(ValueError):
    """A batch cannot be ingested: unreadable, empty, or not matching its feature view."""


@dataclass(frozen=True)
class FeastDtype:
    """How a Feast primitive dtype is checked in pandas and stored in parquet.

    :param expected: the accepted pandas kinds, for messages.
    :param accepts: tells whether a column may hold this dtype.
    :param pandas_dtype: the pandas dtype of a column without nulls.
    :param arrow_type: the parquet (arrow) type of the column.
    """

    expected: str
    accepts: Callable[[pd.Series], bool]
    pandas_dtype: str
    arrow_type: pa.DataType


def _is_text(values: pd.Series) -> bool:
    return ptypes.infer_dtype(values, skipna=True) in ("string", "empty")


def _is_number(values: pd.Series) -> bool:
    return ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values)


#: The Feast dtypes a batch can carry.
FEAST_DTYPES: dict[str, FeastDtype] = {
    "Int32": FeastDtype("integer", ptypes.is_integer_dtype, "int32", pa.int32()),
    "Int64": FeastDtype("integer", ptypes.is_integer_dtype, "int64", pa.int64()),
    "Float32": FeastDtype("number", _is_number, "float32", pa.float32()),
    "Float64": FeastDtype("number", _is_number, "float64", pa.float64()),
    "String": FeastDtype("string", _is_text, "object", pa.string()),
    "Bool": FeastDtype("boolean", ptypes.is_bool_dtype, "bool", pa.bool_()),
}


def feast_dtype(name: str) -> FeastDtype:
    """Look up a supported Feast dtype.

    :param name: a Feast primitive dtype name, e.g. ``"Int64"``.
    :raises BatchValidationError: for dtypes batches cannot carry (arrays, maps, ...).
    """
    try:
        return FEAST_DTYPES[name]
    except KeyError:
        raise BatchValidationError(f"Feast dtype {name} is not supported; use one of {sorted(FEAST_DTYPES)}") from None


def to_utc(value: Any) -> pd.Timestamp:
    """Return ``value`` as a UTC timestamp; a naive value is taken as UTC.

    :param value: a timestamp, datetime or date string.
    """
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc_timestamps(values: pd.Series, column: str) -> pd.Series:
    """Return ``values`` as UTC timestamps (ns); ISO 8601 strings must carry an offset or ``Z``.

    :param values: a datetime column, or strings as read from CSV.
    :param column: the column's name, for messages.
    :raises BatchValidationError: naive timestamps, nulls, or values that are not timestamps.
    """
    if values.isna().any():
        raise BatchValidationError(f"timestamp column {column!r} has {int(values.isna().sum())} null values")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.as_unit("ns")
    if ptypes.is_datetime64_dtype(values):
        raise BatchValidationError(f"timestamp column {column!r} holds naive timestamps: give them a time zone (UTC)")
    if _is_text(values):
        text = values.astype(str).str.strip()
        if not text.str.contains(_TZ_SUFFIX, regex=True).all():
            raise BatchValidationError(
                f"timestamp column {column!r} holds naive timestamps: write them with an offset, e.g. "
                "2024-01-01T00:00:00Z"
            )
        try:
            return pd.to_datetime(text, format="ISO8601", utc=True).dt.as_unit("ns")
        except ValueError as err:
            raise BatchValidationError(f"timestamp column {column!r} is not ISO 8601: {err}") from err
    raise BatchValidationError(f"timestamp column {column!r} has dtype {values.dtype}, expected timestamps")


def batch_id_from_uri(uri: str) -> str:
    """Derive a batch id from a batch's file name: ``s3://b/landing/2024-01-01.csv`` -> ``2024-01-01``.

    :param uri: the batch's path or URI.
    """
    name = PurePosixPath(uri.rstrip("/")).name
    suffix = next((s for s in (".csv.gz", ".parquet", ".pq", ".csv") if name.lower().endswith(s)), "")
    return safe_batch_id(name[: len(name) - len(suffix)])


def safe_batch_id(batch_id: str) -> str:
    """Make ``batch_id`` safe as part of a file name.

    :param batch_id: any non-empty id.
    """
    safe = _UNSAFE_ID_CHARS.sub("_", batch_id).strip("._")
    if not safe:
        raise ValueError(f"batch id {batch_id!r} has no usable characters")
    return safe


def load_batch(uri: str, store: ObjectStore | None = None) -> pd.DataFrame:
    """Read a raw batch to ingest (parquet or CSV, local or ``s3://``), as every landed file is read
    (:func:`~airflow_mlops_provider.core.io.datasets.read_batch`), refusing an unreadable or empty one.

    :param uri: the batch's path or URI.
    :param store: the store to read through.
    :raises FileNotFoundError: nothing at ``uri``.
    :raises BatchValidationError: an unreadable, truncated or empty file.
    """
    try:
        frame = read_batch(uri, store)
    except ValueError as err:
        raise BatchValidationError(f"cannot read batch {uri}: {err}") from err
    if frame.empty:
        raise BatchValidationError(f"batch {uri} has no rows")
    return frame


def conform_batch(
    frame: pd.DataFrame,
    view: FeatureViewSpec,
    batch: str = "batch",
    now: pd.Timestamp | None = None,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> pa.Table:
    """Check ``frame`` against ``view`` and return it as an arrow table of exactly the view's columns.

    Checks: every column is present, each has its Feast dtype and fits its width, entity keys have no
    nulls, event timestamps are time-zone aware and not later than ``now + max_clock_skew``, and no two
    rows share the same entity keys and event timestamp (Feast would keep either one). Extra columns are
    left out.

    :param frame: the raw batch.
    :param view: the feature view it feeds.
    :param batch: the batch's name or URI, for messages.
    :param now: the current time; ``None``: the clock's.
    :param max_clock_skew: how far past ``now`` an event timestamp may be.
    :raises BatchValidationError: every problem found, in one message.
    """
    missing = [c for c in view.columns if c not in frame.columns]
    problems = [f"missing columns {missing}"] if missing else []
    arrays: dict[str, pa.Array] = {}
    for name, dtype_name in {**view.entities, **view.features}.items():
        if name not in missing:
            try:
                arrays[name] = _column(frame[name], name, feast_dtype(dtype_name), dtype_name, name in view.entities)
            except BatchValidationError as err:
                problems.append(str(err))
    if view.timestamp_field not in missing:
        try:
            stamps = utc_timestamps(frame[view.timestamp_field], view.timestamp_field)
            problems += _future_timestamps(stamps, view.timestamp_field, now, max_clock_skew)
            arrays[view.timestamp_field] = pa.array(stamps, type=pa.timestamp("ns", tz="UTC"), from_pandas=True)
        except BatchValidationError as err:
            problems.append(str(err))
    if not problems:
        keys = frame[list(view.entities)].reset_index(drop=True)
        keys[view.timestamp_field] = arrays[view.timestamp_field].to_pandas()
        problems += _duplicate_keys(keys)
    if problems:
        raise BatchValidationError(f"{batch} does not match feature view {view.name!r}: {'; '.join(problems)}")
    return pa.table({name: arrays[name] for name in view.columns})


def _future_timestamps(
    stamps: pd.Series, column: str, now: pd.Timestamp | None, max_clock_skew: timedelta
) -> list[str]:
    """The problem of timestamps later than ``now + max_clock_skew``, if there are any."""
    limit = (to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")) + max_clock_skew
    late = stamps > limit
    if not late.any():
        return []
    return [
        f"timestamp column {column!r} has {int(late.sum())} values in the future (the latest is "
        f"{stamps.max().isoformat()}, more than {max_clock_skew} after {limit - max_clock_skew:%Y-%m-%dT%H:%M:%SZ})"
    ]


def _duplicate_keys(keys: pd.DataFrame) -> list[str]:
    """The problem of rows sharing their entity keys and timestamp (``keys``' columns), naming a few keys."""
    duplicated = keys.duplicated(keep=False)
    if not duplicated.any():
        return []
    shown = keys[duplicated].drop_duplicates().head(_KEYS_SHOWN)
    examples = ", ".join(str(tuple(str(value) for value in row)) for row in shown.itertuples(index=False))
    return [
        f"{int(duplicated.sum())} rows share their {tuple(keys.columns)} with another row, e.g. {examples}: "
        "keep one row per key (Feast would serve either of them)"
    ]


def _column(values: pd.Series, name: str, dtype: FeastDtype, dtype_name: str, entity: bool) -> pa.Array:
    """Convert one column to its arrow type, or explain why it cannot be."""
    if entity and values.isna().any():
        raise BatchValidationError(f"entity column {name!r} has {int(values.isna().sum())} null values")
    if not dtype.accepts(values):
        raise BatchValidationError(
            f"column {name!r} has dtype {values.dtype}, expected {dtype_name} ({dtype.expected})"
        )
    try:
        return pa.array(values, type=dtype.arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise BatchValidationError(f"column {name!r} does not fit {dtype_name}: {err}") from err


@dataclass(frozen=True)
class ArchivedBatches:
    """What :func:`archive_ingested` did.

    :param archived: where each ingested batch now is, in the order given.
    :param left: the landed batches neither ingested nor gone from the landing zone, sorted.
    """

    archived: list[str]
    left: list[str]


def archive_ingested(
    landed: Sequence[str], ingested: Sequence[str], archive_prefix: str, store: ObjectStore
) -> ArchivedBatches:
    """Move the ingested batches under ``archive_prefix``, and report the landed ones still un-ingested.

    Idempotent: a batch already moved (by an earlier try) is skipped. Each batch is copied before it is
    deleted, so an interruption never loses one. A landed batch that was not ingested but has left the
    landing zone (quarantined) is not reported.

    :param landed: the batches that were in the landing zone.
    :param ingested: the batches that were ingested.
    :param archive_prefix: where ingested batches go, e.g. ``<data_dir>/ingested/``.
    :param store: the store to go through.
    """
    archived = []
    for source in ingested:
        target = moved_uri(source, archive_prefix)
        if store.exists(source):
            store.write_bytes(target, store.read_bytes(source))
            store.delete(source, missing_ok=True)
        archived.append(target)
    done = set(ingested)
    left = sorted(uri for uri in landed if uri not in done and store.exists(uri))
    return ArchivedBatches(archived=archived, left=left)
