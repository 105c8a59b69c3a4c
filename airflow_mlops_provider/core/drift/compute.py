"""Data drift between a reference and a current frame, with Evidently 0.7's verdicts, without Evidently.

:func:`compute_drift` gives, per column, the same test, threshold, score and drift flag as Evidently's
``ValueDrift`` (and so ``DataDriftPreset``) for the same settings, and the same dataset verdict as its
``DriftedColumnsCount`` (drifted share >= ``drift_share``). Column kinds are inferred from the current
frame as Evidently infers them; see :mod:`airflow_mlops_provider.core.drift.stats` for the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from airflow_mlops_provider.contracts import DriftVerdicts
from airflow_mlops_provider.core.drift.methods import CATEGORICAL, NUMERIC, STAT_TESTS, Kind
from airflow_mlops_provider.core.drift.spec import DriftConfig, NotEnoughDataError
from airflow_mlops_provider.core.drift.stats import SCORERS, CategoricalSample, NumericSample, Sample, default_method

#: Integer columns with at most this many distinct values are categorical (Evidently's rule).
INTEGER_CARDINALITY_LIMIT = 10
#: Column names an error message lists at most.
LISTED_NAMES = 10


class UnsupportedColumnError(ValueError):
    """A column whose kind (text, datetime, unknown) has no tabular drift test here."""


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict.

    :param column: the column name.
    :param kind: ``num`` or ``cat``.
    :param method: the test used.
    :param threshold: the threshold used.
    :param score: the p-value or distance.
    :param drifted: whether the column drifted.
    """

    column: str
    kind: Kind
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """Every column's verdict and the dataset verdict.

    :param columns: the per-column verdicts, in the order asked.
    :param drift_share: the share of drifted columns at which the dataset drifts.
    :param reference_rows: rows in the reference frame.
    :param current_rows: rows in the current frame.
    """

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    reference_rows: int
    current_rows: int

    @property
    def drifted_columns(self) -> list[str]:
        """The names of the drifted columns."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        """The share of drifted columns."""
        return len(self.drifted_columns) / len(self.columns)

    @property
    def dataset_drift(self) -> bool:
        """Whether the drifted share reaches :attr:`drift_share`."""
        return self.share >= self.drift_share

    def to_dict(self) -> DriftVerdicts:
        """A JSON-serializable summary (with the derived fields), readable by :meth:`from_dict`."""
        return DriftVerdicts(
            dataset_drift=self.dataset_drift,
            share=self.share,
            drift_share=self.drift_share,
            drifted_columns=self.drifted_columns,
            reference_rows=self.reference_rows,
            current_rows=self.current_rows,
            columns=[asdict(c) for c in self.columns],
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResult:
        """Rebuild a result from :meth:`to_dict` output.

        :param data: the summary.
        """
        return cls(
            columns=tuple(ColumnDrift(**c) for c in data["columns"]),
            drift_share=data["drift_share"],
            reference_rows=data["reference_rows"],
            current_rows=data["current_rows"],
        )


def column_kind(series: pd.Series) -> Kind:
    """The drift kind Evidently infers for a column (``infer_column_type``), or an error for other kinds.

    :param series: the column in the current frame.
    :raises UnsupportedColumnError: for text, datetime, list or unknown columns.
    """
    dtype = series.dtype.name
    if dtype.startswith("float"):
        return NUMERIC
    if dtype.startswith("int"):
        return CATEGORICAL if series.nunique() <= INTEGER_CARDINALITY_LIMIT else NUMERIC
    if dtype in ("bool", "category"):
        return CATEGORICAL
    if dtype in ("string", "str", "object"):
        present = series.dropna()
        strings = dtype != "object" or (
            len(present) > 0 and isinstance(present.iloc[0], str) and isinstance(present.iloc[-1], str)
        )
        if strings and series.nunique() <= series.count() * 0.5:
            return CATEGORICAL
        what = "text (more than half of its values are distinct)" if strings else "not strings"
        raise UnsupportedColumnError(f"column {series.name!r} is {what}; no tabular drift test applies")
    raise UnsupportedColumnError(f"column {series.name!r} has dtype {dtype}, which Evidently does not test for drift")


def drift_columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The columns of both frames that have a drift test (numeric or categorical), in current's order.

    :param reference: the reference frame.
    :param current: the current frame.
    """
    columns = []
    for column in current.columns:
        if column not in reference.columns:
            continue
        try:
            column_kind(current[column])
        except UnsupportedColumnError:
            continue
        columns.append(column)
    return columns


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
) -> DriftResult:
    """Test each column for drift as Evidently does, and decide whether the dataset drifted.

    :param reference: the reference frame (e.g. the model's training set).
    :param current: the current frame (e.g. a recent window of features).
    :param columns: the columns to test; by default :func:`drift_columns`.
    :param config: tests, thresholds, the drift share and the row minimum; Evidently's defaults when ``None``.
    :raises NotEnoughDataError: the current frame has fewer than ``config.min_rows`` rows.
    :raises ValueError: a column is missing, of an unsupported kind, given a test that does not accept its
        kind or a threshold out of its test's range; the reference has fewer than ``config.min_rows`` rows,
        or a column fewer values after dropping NaN/inf.
    """
    config = config or DriftConfig()
    if len(reference) < config.min_rows:
        raise ValueError(
            f"the reference has {len(reference)} row(s): a drift verdict needs at least min_rows={config.min_rows}"
        )
    if len(current) < config.min_rows:
        raise NotEnoughDataError(
            f"the current window has {len(current)} row(s), fewer than min_rows={config.min_rows}: no verdict yet"
        )
    names = list(columns) if columns is not None else drift_columns(reference, current)
    if not names:
        raise ValueError("no columns to test for drift")
    missing = sorted({c for c in names if c not in reference.columns or c not in current.columns}, key=str)
    if missing:
        raise ValueError(f"column(s) {listed(missing)} missing from the reference or the current frame")
    results = tuple(_column_drift(reference[c], current[c], config) for c in names)
    return DriftResult(results, config.drift_share, len(reference), len(current))


def _column_drift(reference: pd.Series, current: pd.Series, config: DriftConfig) -> ColumnDrift:
    column = str(current.name)
    kind = column_kind(current)
    sample = _sample(reference, current, kind, config.min_rows)
    method = config.method_for(column, kind)
    if method is None:
        method = default_method(sample)
    elif kind not in STAT_TESTS[method].kinds:
        raise ValueError(f"drift method {method!r} does not apply to {kind} column {column!r}")
    test = STAT_TESTS[method]
    threshold = config.threshold_for(column, kind)
    threshold = test.default_threshold if threshold is None else float(threshold)
    test.check_threshold(threshold, f" (column {column!r})")
    score = SCORERS[method](sample)
    return ColumnDrift(column, kind, method, threshold, score, test.drifted(score, threshold))


def listed(names: Sequence[object], limit: int = LISTED_NAMES) -> str:
    """``names`` for a message: at most ``limit`` of them, then how many more.

    :param names: e.g. column names.
    :param limit: how many to show.
    """
    shown = repr(list(names[:limit]))
    return shown if len(names) <= limit else f"{shown[:-1]}, ... ({len(names) - limit} more)]"


def _sample(reference: pd.Series, current: pd.Series, kind: Kind, min_rows: int) -> Sample:
    """Drop NaN and infinities like Evidently, and wrap the values for the tests."""
    if kind == NUMERIC:
        for side in (reference, current):
            if not pd.api.types.is_numeric_dtype(side):
                raise ValueError(f"numeric column {current.name!r} has non-numeric values ({side.dtype})")
        sample = NumericSample(reference.to_numpy(dtype=np.float64), current.to_numpy(dtype=np.float64))
        _check_enough(current.name, sample.n_reference, sample.n_current, min_rows)
        return sample
    ref_s, cur_s = (side.replace([-np.inf, np.inf], np.nan).dropna() for side in (reference, current))
    _check_enough(current.name, len(ref_s), len(cur_s), min_rows)
    return CategoricalSample(ref_s, cur_s)


def _check_enough(column: object, n_reference: int, n_current: int, min_rows: int) -> None:
    for side, rows in (("reference", n_reference), ("current", n_current)):
        if rows < min_rows:
            raise ValueError(
                f"column {column!r} has {f'{rows} value(s)' if rows else 'no values'} in the {side} frame after "
                "dropping NaN/inf, "
                f"fewer than min_rows={min_rows}"
            )
