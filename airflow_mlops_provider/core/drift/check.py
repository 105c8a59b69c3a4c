"""What a drift check compares: the reference set, a time window of current data, and the feature columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias

import pandas as pd

from airflow_mlops_provider.contracts import CHAMPION, DriftSummary, RunParam, Split, Tag
from airflow_mlops_provider.core.drift.compute import DriftResult, compute_drift
from airflow_mlops_provider.core.drift.spec import DriftConfig
from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset, read_datasets
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.models.lineage import AliasNotSetError, alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient

TimeBound: TypeAlias = datetime | str | pd.Timestamp | None
#: Column verdicts a drift summary (XCom, trigger event, stored summary) lists at most: the drifted ones
#: first; ``columns_tested`` counts them all, and Evidently's report has every one.
SUMMARY_COLUMNS = 100


class DigestMismatchError(ValueError):
    """The reference dataset's content is not the one recorded at training time."""


class EmptyWindowError(ValueError):
    """No current rows fall in the requested time window."""


@dataclass(frozen=True)
class ReferenceSet:
    """The data current data is compared with, usually a model version's training set.

    :param uri: the dataset.
    :param digest: its recorded :func:`~airflow_mlops_provider.core.io.datasets.dataset_digest` (whole file);
        ``None`` skips the check.
    :param features: the model's input columns; empty when unknown.
    :param target: the label column, never compared.
    :param split_column: the split column, never compared; without ``split``, rows are filtered on it when
        present.
    :param split_value: the rows to keep (the training rows); ``None`` keeps all.
    :param model_name: the registered model it belongs to, if any.
    :param model_version: that model's version, if any.
    :param split: the split policy the model was trained with: the ``split_value`` rows are the ones it
        assigns (the same rows the trainer used); ``None``: filter on ``split_column`` when present.
    :param holdout_digest: the digest of the holdout rows the trainer recorded; with ``split``, the re-split
        must reproduce it (``None`` skips the check).
    """

    uri: str
    digest: str | None = None
    features: tuple[str, ...] = ()
    target: str | None = None
    split_column: str | None = Split.COLUMN
    split_value: str | None = Split.TRAIN
    model_name: str | None = None
    model_version: str | None = None
    split: SplitPolicy | None = None
    holdout_digest: str | None = None

    @property
    def key(self) -> str:
        """What identifies this reference's content: the digest, else the URI."""
        return self.digest or self.uri

    def load(self, store: ObjectStore | None = None) -> pd.DataFrame:
        """Read the dataset, check its digest, and keep the ``split_value`` rows.

        :param store: the store to read through.
        :raises DigestMismatchError: the file changed since the digest was recorded, or its split does not
            reproduce the trainer's holdout rows.
        :raises SplitError: ``split`` cannot split the dataset.
        """
        frame = read_dataset(self.uri, store=store)
        if self.digest is not None and (actual := dataset_digest(frame)) != self.digest:
            raise DigestMismatchError(f"{self.uri} has digest {actual}, but {self.digest} was recorded")
        if self.split is not None:
            if self.split_value is None:
                return frame
            parts = self.split.partition(frame, self.target)
            held_out = dataset_digest(parts[Split.HOLDOUT])
            if self.holdout_digest is not None and held_out != self.holdout_digest:
                raise DigestMismatchError(
                    f"splitting {self.uri} by {self.split.to_json()} gives holdout rows with digest {held_out}, "
                    f"but the trainer recorded {self.holdout_digest}: these are not the rows it trained on"
                )
            rows = parts.get(self.split_value)
            if rows is None or rows.empty:
                raise ValueError(f"{self.uri} has no {self.split_value!r} rows under {self.split.to_json()}")
            return rows
        if self.split_column and self.split_value is not None and self.split_column in frame.columns:
            frame = frame[frame[self.split_column] == self.split_value]
            if frame.empty:
                raise ValueError(f"{self.uri} has no rows with {self.split_column} == {self.split_value!r}")
        return frame


def load_window(
    uri: str,
    store: ObjectStore | None = None,
    time_column: str | None = None,
    start: TimeBound = None,
    end: TimeBound = None,
    lookback: timedelta | None = None,
) -> pd.DataFrame:
    """Read current data, keeping rows with ``start <= time < end`` and within ``lookback`` of the newest row.

    :param uri: the dataset (features, or predictions of batch inference): a file, or a ``/``-terminated
        prefix whose parquet/CSV files are read together, such as a feature view's offline source.
    :param store: the store to read through.
    :param time_column: the event-time column; required by ``start``, ``end`` and ``lookback``.
    :param start: inclusive lower bound; a naive value is UTC.
    :param end: exclusive upper bound; a naive value is UTC.
    :param lookback: keep rows newer than the newest row's time minus this.
    :raises EmptyWindowError: no rows in the window.
    :raises ValueError: a bound without a time column, a bound that is not a time, a start not before the
        end (checked before reading), or an unknown time column.
    """
    if time_column is None and (start is not None or end is not None or lookback is not None):
        raise ValueError("a time window needs time_column")
    lower, upper = _bound(start, "start"), _bound(end, "end")
    if lower is not None and upper is not None and lower >= upper:
        raise ValueError(f"the window start {start} is not before its end {end}")
    frame = read_datasets(uri, store=store)
    if time_column is None:
        return frame
    if time_column not in frame.columns:
        raise ValueError(f"{uri} has no time column {time_column!r}")
    times = pd.to_datetime(frame[time_column], utc=True)
    keep = pd.Series(True, index=frame.index)
    if lower is not None:
        keep &= times >= lower
    if upper is not None:
        keep &= times < upper
    if lookback is not None and keep.any():
        keep &= times > times[keep].max() - lookback
    window = frame[keep]
    if window.empty:
        raise EmptyWindowError(f"no rows of {uri} in the window [{start}, {end}) with lookback {lookback}")
    return window


def _bound(value: TimeBound, name: str) -> pd.Timestamp | None:
    """A window bound as a UTC timestamp (a naive one is UTC)."""
    if value is None:
        return None
    try:
        return pd.to_datetime(value, utc=True)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"the window {name} {value!r} is not a time (use ISO 8601, e.g. 2026-01-01T00:00:00Z)"
        ) from err


def feature_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] = (),
    exclude: Iterable[str | None] = (),
) -> list[str]:
    """The columns to compare: ``columns``, or those of both frames minus ``exclude``, datetimes and ids.

    An id is an integer or string column whose values are all distinct in both frames.

    :param reference: the reference frame.
    :param current: the current frame.
    :param columns: an explicit list, returned as is.
    :param exclude: columns never compared (target, split, time...); ``None`` entries are ignored.
    """
    if columns:
        return list(columns)
    skip = {name for name in exclude if name is not None}
    chosen = [
        name
        for name in current.columns
        if name in reference.columns
        and name not in skip
        and not pd.api.types.is_datetime64_any_dtype(current[name])
        and not (_is_id(reference[name]) and _is_id(current[name]))
    ]
    if not chosen:
        raise ValueError("the reference and current frames share no feature column")
    return chosen


def compare(
    reference: ReferenceSet,
    reference_frame: pd.DataFrame,
    current_frame: pd.DataFrame,
    config: DriftConfig,
    columns: Sequence[str] = (),
    exclude: Iterable[str | None] = (),
) -> DriftResult:
    """Compute drift on the given columns, else the model's features, else the shared feature columns.

    :param reference: the reference set (its target and split column are never compared).
    :param reference_frame: its loaded rows.
    :param current_frame: the current window.
    :param config: tests, thresholds and drift share.
    :param columns: an explicit column list.
    :param exclude: more columns never compared (e.g. the time column).
    """
    chosen = feature_columns(
        reference_frame,
        current_frame,
        columns or reference.features,
        exclude=[reference.target, reference.split_column, *exclude],
    )
    return compute_drift(reference_frame, current_frame, chosen, config)


def drift_summary(reference: ReferenceSet, current_uri: str, window_id: str, result: DriftResult) -> DriftSummary:
    """The JSON-serializable record of a check: what was compared, the window's content id, and the verdicts,
    bounded: at most :data:`SUMMARY_COLUMNS` column verdicts (the drifted ones first) and drifted names.

    :param reference: the reference set.
    :param current_uri: the current dataset.
    :param window_id: the current window's content digest.
    :param result: the verdicts.
    """
    verdicts = result.to_dict()
    columns = verdicts["columns"]
    if len(columns) > SUMMARY_COLUMNS:
        kept = [c for c in columns if c["drifted"]] + [c for c in columns if not c["drifted"]]
        verdicts["columns"] = kept[:SUMMARY_COLUMNS]
        verdicts["drifted_columns"] = verdicts["drifted_columns"][:SUMMARY_COLUMNS]
    return DriftSummary(
        model_name=reference.model_name,
        model_version=reference.model_version,
        reference_uri=reference.uri,
        reference_digest=reference.digest,
        current_uri=current_uri,
        window_id=window_id,
        columns_tested=len(columns),
        **verdicts,
    )


def _is_id(series: pd.Series) -> bool:
    return series.dtype.kind in "iuOSU" and len(series) > 1 and bool(series.is_unique)


def aliased_training_set(
    client: MlflowClient, model_name: str, alias: str = CHAMPION, split_value: str | None = Split.TRAIN
) -> ReferenceSet:
    """The training set of the version ``alias`` points at, with the model's features, target and split.

    The dataset comes from the version's tags :attr:`Tag.DATASET_URI` and :attr:`Tag.DATASET_DIGEST`;
    the features, target and split policy from its run's params (:class:`RunParam`) when the run records
    them: the rows kept are those the trainer's policy (:attr:`RunParam.SPLIT_POLICY`) assigns to
    ``split_value``, so a dataset without a split column works too. A run without a recorded policy keeps
    the rows of its split column, when present.

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    :param split_value: the split to keep (``train``: what the model learned from); ``None`` keeps all.
    :raises AliasNotSetError: no version has the alias.
    :raises LookupError: the version has no dataset tag.
    :raises SplitError: the run records an invalid split policy.
    """
    version = alias_version(client, model_name, alias)
    if version is None:
        raise AliasNotSetError(f"model {model_name!r} has no version aliased {alias!r}")
    model_version = client.get_model_version(model_name, version)
    uri = model_version.tags.get(Tag.DATASET_URI)
    if not uri:
        raise LookupError(f"{model_name} version {version} has no {Tag.DATASET_URI} tag")
    params = client.get_run(model_version.run_id).data.params if model_version.run_id else {}
    features = [
        name.strip()
        for key in (RunParam.NUMERIC_FEATURES, RunParam.CATEGORICAL_FEATURES)
        for name in params.get(key, "").split(",")
        if name.strip()
    ]
    recorded = params.get(RunParam.SPLIT_POLICY)
    split = SplitPolicy.from_json(recorded) if recorded else None
    return ReferenceSet(
        uri=uri,
        digest=model_version.tags.get(Tag.DATASET_DIGEST) or None,
        features=tuple(features),
        target=params.get(RunParam.TARGET),
        split_column=split.column if split else params.get(RunParam.SPLIT_COLUMN, Split.COLUMN),
        split_value=split_value,
        model_name=model_name,
        model_version=version,
        split=split,
        holdout_digest=model_version.tags.get(Tag.HOLDOUT_DIGEST) or None,
    )
