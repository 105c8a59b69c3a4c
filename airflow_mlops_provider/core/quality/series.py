"""The live quality series: predictions joined with their (late) labels, one row per (model version, window).

Windows are aligned on the epoch by event time (``window`` = 1 day: each UTC day). A window is recomputed
whenever its rows are read again, so labels that arrive late raise its label count and coverage, and
change its metric; :func:`merge_series` keeps one row per (version, window), the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from airflow_mlops_provider.contracts import PredictionColumn, ProblemType
from airflow_mlops_provider.core.io.datasets import dataset_digest, dataset_files, read_dataset
from airflow_mlops_provider.core.models.metrics import METRICS_BY_PROBLEM, compute_metrics

if TYPE_CHECKING:
    from airflow_mlops_provider.core.io.storage import ObjectStore

LABEL = "label"


class Col:
    """The columns of the series table."""

    VERSION = PredictionColumn.MODEL_VERSION
    WINDOW_START = "window_start"  # ISO 8601, UTC
    WINDOW_END = "window_end"
    STEP = "step"  # window_start / window: the MLflow step of the window's metrics
    PREDICTIONS = "predictions"
    LABELS = "labels"
    COVERAGE = "label_coverage"  # labels / predictions
    WINDOW_ID = "window_id"  # content digest of the window's labelled rows
    COMPUTED_AT = "computed_at"
    KEY = (VERSION, WINDOW_START)


def parse_window(window: str | float | pd.Timedelta) -> pd.Timedelta:
    """A window length: a pandas duration (``"1D"``, ``"6h"``) or a number of seconds.

    :param window: the length.
    :raises ValueError: not a duration, or not positive.
    """
    try:
        length = pd.Timedelta(float(window), unit="s") if _is_number(window) else pd.Timedelta(str(window))
    except (TypeError, ValueError):
        raise ValueError(f"window {window!r} is not a duration (e.g. '1D', '6h', or seconds)") from None
    if pd.isna(length) or length <= pd.Timedelta(0):
        raise ValueError(f"window must be a positive duration, not {window!r}")
    return length


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def utc_times(values: pd.Series, column: str) -> pd.Series:
    """``values`` as UTC timestamps; naive ones are UTC, strings are ISO 8601.

    :param values: a datetime or string column.
    :param column: its name, for messages.
    :raises ValueError: values that are not times.
    """
    try:
        if pd.api.types.is_datetime64_any_dtype(values):
            return pd.to_datetime(values, utc=True)
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (TypeError, ValueError) as err:
        raise ValueError(f"column {column!r} holds values that are not times: {err}") from err


def read_columns(uri: str, columns: Sequence[str], store: ObjectStore, optional: Sequence[str] = ()) -> pd.DataFrame:
    """The ``columns`` of a dataset file, or of every parquet/CSV file under a ``/``-terminated prefix.

    :param uri: a file or a prefix.
    :param columns: the columns to read.
    :param store: the store to read through.
    :param optional: more columns, read when a file has them.
    :raises FileNotFoundError: nothing at ``uri``.
    :raises ValueError: a file lacks one of ``columns``.
    """
    frames = []
    for name in dataset_files(uri, store):
        frame = read_dataset(name, store=store)
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{name} has no column(s) {missing}; its columns: {sorted(map(str, frame.columns))}")
        frames.append(frame[[*columns, *(column for column in optional if column in frame.columns)]])
    return pd.concat(frames, ignore_index=True)


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    entity_columns: Sequence[str],
    time_column: str,
    label_column: str,
) -> pd.DataFrame:
    """Each prediction with its label (NaN when none has arrived), matched on the entity and the event time.

    A row scored twice by the same version counts once (the latest ``scored_at``); a label given twice
    counts once (the last non-null one).

    :param predictions: entity columns, ``time_column``, :class:`PredictionColumn` columns.
    :param labels: entity columns, ``time_column``, ``label_column``.
    :param entity_columns: the entity key.
    :param time_column: the event time.
    :param label_column: the label.
    :return: the entity columns, ``time_column`` (UTC), ``prediction``, ``model_version`` and ``label``.
    """
    keys = [*entity_columns, time_column]
    scored = predictions.assign(**{time_column: utc_times(predictions[time_column], time_column)})
    scored = scored.assign(**{PredictionColumn.MODEL_VERSION: scored[PredictionColumn.MODEL_VERSION].astype(str)})
    if PredictionColumn.SCORED_AT in scored.columns:
        scored = scored.sort_values(PredictionColumn.SCORED_AT, kind="stable")
    scored = scored.drop_duplicates([PredictionColumn.MODEL_VERSION, *keys], keep="last")
    known = labels[[*keys, label_column]].dropna(subset=[label_column])
    known = known.assign(**{time_column: utc_times(known[time_column], time_column)})
    known = known.drop_duplicates(keys, keep="last").rename(columns={label_column: LABEL})
    joined = scored[[*keys, PredictionColumn.PREDICTION, PredictionColumn.MODEL_VERSION]].merge(
        known, on=keys, how="left"
    )
    return joined.reset_index(drop=True)


def window_series(joined: pd.DataFrame, time_column: str, window: pd.Timedelta, problem_type: str) -> pd.DataFrame:
    """One row per (model version, window) of :func:`join_labels`'s output: counts, coverage and metrics.

    A window's metrics are those of :func:`~airflow_mlops_provider.core.models.metrics.compute_metrics` on
    its labelled rows; NaN without labels, or (binary) while only one class has been labelled.

    :param joined: predictions with labels.
    :param time_column: the event time.
    :param window: the window length; windows are aligned on the epoch.
    :param problem_type: ``binary`` or ``regression``.
    """
    metric_names = METRICS_BY_PROBLEM[problem_type]
    starts = joined[time_column].dt.floor(window)
    rows = []
    for (version, start), group in joined.groupby([joined[PredictionColumn.MODEL_VERSION], starts], sort=True):
        labelled = group.dropna(subset=[LABEL])
        metrics = dict.fromkeys(metric_names, np.nan)
        classes = labelled[LABEL].nunique()
        if len(labelled) and (problem_type != ProblemType.BINARY or classes == 2):
            metrics |= compute_metrics(problem_type, labelled[LABEL], labelled[PredictionColumn.PREDICTION])
        rows.append(
            {
                Col.VERSION: str(version),
                Col.WINDOW_START: start.isoformat(),
                Col.WINDOW_END: (start + window).isoformat(),
                Col.STEP: int(start.value // window.value),
                Col.PREDICTIONS: len(group),
                Col.LABELS: len(labelled),
                Col.COVERAGE: len(labelled) / len(group),
                **metrics,
                Col.WINDOW_ID: dataset_digest(labelled.sort_values(list(labelled.columns)).reset_index(drop=True)),
            }
        )
    return pd.DataFrame(rows)


def merge_series(previous: pd.DataFrame | None, recomputed: pd.DataFrame) -> pd.DataFrame:
    """The stored series with the recomputed rows replacing theirs: one row per (version, window).

    :param previous: the stored series, if any.
    :param recomputed: the rows computed now.
    """
    frames = [frame for frame in (previous, recomputed) if frame is not None and not frame.empty]
    if not frames:
        return recomputed
    merged = pd.concat(frames, ignore_index=True).drop_duplicates(list(Col.KEY), keep="last")
    return merged.sort_values([Col.WINDOW_START, Col.VERSION], kind="stable").reset_index(drop=True)


def changed_rows(previous: pd.DataFrame | None, recomputed: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The recomputed rows that are new, or whose ``columns`` differ from the stored ones.

    :param previous: the stored series, if any.
    :param recomputed: the rows computed now.
    :param columns: the values compared (counts and metrics).
    """
    if previous is None or previous.empty or recomputed.empty:
        return recomputed
    before = recomputed[list(Col.KEY)].merge(previous, on=list(Col.KEY), how="left")
    same = pd.Series(True, index=recomputed.index)
    for column in columns:
        old, new = before[column].to_numpy(), recomputed[column].to_numpy()
        both_nan = pd.isna(old) & pd.isna(new)
        same &= (old == new) | both_nan
    return recomputed[~same.to_numpy()]
