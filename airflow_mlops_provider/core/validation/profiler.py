"""Profile reference data into a starter Great Expectations 1.x suite (GX 1.x dropped its profilers).

The suite is plain JSON in GX 1.x's format, built without importing GX. Per column it expects presence,
the dtype, the null rate, and either a value range (numeric columns) or a value set (string columns with
few distinct values); for the table, a row-count range. Every bound contains the reference data, widened
by a margin, so the suite passes on the data it came from. Datetime columns get no range (time moves on).

A column that is entirely null in the reference data gets "stays null" (and is listed in the suite's
``meta``, for review): with no expectation at all, any later values, or none, would pass. Reference data
that cannot give a trustworthy suite is refused with a :class:`ValueError` that says why: no rows, a
repeated column name, infinite values in a column that gets a range, a column mixing value types.
Bounds never overflow: widened float bounds stop at the
largest finite float, integer bounds at the column dtype's limits, so the suite stays plain JSON.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

#: The largest finite float: widened float bounds stop here (JSON has no infinity).
FLOAT_MAX = sys.float_info.max
#: A string column holding a longer value is text, not categories: it gets no value set.
MAX_CATEGORY_CHARS = 100
#: The key, in the suite's ``meta.profile``, of the columns that were entirely null (expected to stay null).
NULL_COLUMNS = "null_columns"


@dataclass(frozen=True)
class ProfileOptions:
    """How loose the starter bounds are.

    :param margin: relative slack: numeric ranges widen by ``margin`` times the observed span on each
        side (never below 0 for non-negative columns), the row count may vary by ``margin`` times the
        reference count, and a null rate ``p`` may grow to ``p * (1 + margin)``.
    :param max_categories: string columns with at most this many distinct values, none longer than
        :data:`MAX_CATEGORY_CHARS` characters, get a value set.
    :param no_range: numeric columns that get no range, e.g. identifiers.
    """

    margin: float = 0.1
    max_categories: int = 20
    no_range: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin must be a finite number >= 0, got {self.margin}")
        if self.max_categories < 0:
            raise ValueError(f"max_categories must be >= 0, got {self.max_categories}")


def profile_suite(
    df: pd.DataFrame, name: str, options: ProfileOptions | None = None, source: str | None = None
) -> dict[str, Any]:
    """Return a starter suite for data like ``df``, as the JSON dict of a GX 1.x ``ExpectationSuite``.

    :param df: the reference data (at least one row).
    :param name: the suite's name.
    :param options: the bounds' slack; defaults of :class:`ProfileOptions` if ``None``.
    :param source: where the reference data came from, recorded in the suite's ``meta``.
    :raises ValueError: if ``df`` has no rows or no columns, ``options.no_range`` names an unknown column,
        or a column cannot be profiled (a repeated name, infinite values where a range goes, mixed value types).
    """
    options = options or ProfileOptions()
    if df.empty:
        raise ValueError(f"cannot profile an empty dataset: it has {len(df)} rows and {df.shape[1]} columns")
    unknown = sorted(set(options.no_range) - set(map(str, df.columns)))
    if unknown:
        raise ValueError(f"no_range names columns that are not in the data: {unknown}")
    _refuse_unprofilable(df, options)
    expectations = [_expectation("expect_table_row_count_to_be_between", **_row_count_bounds(len(df), options.margin))]
    for column, series in df.items():
        expectations += _column_expectations(str(column), series, options)
    profile: dict[str, Any] = {
        "source": source,
        "rows": len(df),
        "margin": options.margin,
        "max_categories": options.max_categories,
    }
    null_columns = [str(column) for column, series in df.items() if series.isna().all()]
    if null_columns:
        profile[NULL_COLUMNS] = null_columns
    return {
        "name": name,
        "expectations": expectations,
        "meta": {"profile": profile},
        "notes": "Starter suite profiled from reference data: review every bound before relying on it.",
    }


def _refuse_unprofilable(df: pd.DataFrame, options: ProfileOptions) -> None:
    """Raise a :class:`ValueError` naming the first column a suite could not be trusted on, and why."""
    repeated = sorted({str(column) for column in df.columns[df.columns.duplicated()]})
    if repeated:
        raise ValueError(f"column name(s) {repeated} appear more than once: a suite names each column once")
    for name, series in df.items():
        column = str(name)
        if _is_number(series) and column not in options.no_range:
            infinite = series[series.isin([math.inf, -math.inf])]
            if len(infinite):
                raise ValueError(
                    f"column {column!r} holds {len(infinite)} infinite value(s) (e.g. {infinite.iloc[0]}): no value "
                    f"range can contain them; clean the reference data, or leave the column without a range "
                    f"(no_range / --no-range {column})"
                )
        elif series.dtype == object and ptypes.infer_dtype(series, skipna=True) in ("mixed", "mixed-integer"):
            values = series.dropna()
            first_of_kind = ~values.map(type).duplicated().to_numpy()
            if first_of_kind.sum() > 1:
                examples = " and ".join(f"{value!r} ({type(value).__name__})" for value in values[first_of_kind][:2])
                raise ValueError(
                    f"column {column!r} mixes value types, e.g. {examples}: a suite cannot say what it holds; "
                    "convert the column to one type"
                )


def _expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _row_count_bounds(rows: int, margin: float) -> dict[str, int | None]:
    """``rows`` give or take ``margin`` times itself; no upper bound beyond what an int64 counts."""
    low, high = round(rows * max(0.0, 1 - margin), 6), round(rows * (1 + margin), 6)  # 50000 * 1.1 is not 55000.0
    return {"min_value": math.floor(low), "max_value": math.ceil(high) if high < 2**63 else None}


def _column_expectations(column: str, series: pd.Series, options: ProfileOptions) -> list[dict[str, Any]]:
    """Presence, dtype, null rate, and a range or a value set for one column; "stays null" if it is all null."""
    expectations = [_expectation("expect_column_to_exist", column=column)]
    gx_type = _gx_type(series)
    if gx_type is not None:
        expectations.append(_expectation("expect_column_values_to_be_of_type", column=column, type_=gx_type))
    if series.isna().all():
        return [*expectations, _expectation("expect_column_values_to_be_null", column=column)]
    expectations.append(_null_expectation(column, float(series.isna().mean()), options.margin))
    values = series.dropna()
    if _is_number(series) and column not in options.no_range:
        expectations.append(
            _expectation("expect_column_values_to_be_between", column=column, **_range(values, options.margin))
        )
    elif _is_categories(values, gx_type, options.max_categories):
        expectations.append(
            _expectation("expect_column_values_to_be_in_set", column=column, value_set=sorted(values.unique()))
        )
    return expectations


def _gx_type(series: pd.Series) -> str | None:
    """The ``type_`` that GX's pandas engine matches for this column, or ``None`` when there is none."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "Timestamp"  # GX compares dtype.type, the scalar type, for tz-aware columns
    if isinstance(dtype, pd.StringDtype) or ptypes.infer_dtype(series, skipna=True) == "string":
        return "str"  # object columns are checked value by value
    if dtype.kind in "biufM" and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return str(dtype.name)
    return None


def _is_categories(values: pd.Series, gx_type: str | None, max_categories: int) -> bool:
    """Whether the non-null string ``values`` are a few short categories (else free text: no value set)."""
    return gx_type == "str" and values.nunique() <= max_categories and values.str.len().max() <= MAX_CATEGORY_CHARS


def _is_number(series: pd.Series) -> bool:
    return ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype)


def _null_expectation(column: str, null_rate: float, margin: float) -> dict[str, Any]:
    """No nulls if there were none; else at most ``null_rate * (1 + margin)``.

    When that allowance reaches 100%, half the observed share of values is still required, so that a
    column that later arrives entirely null fails.
    """
    if null_rate == 0:
        return _expectation("expect_column_values_to_not_be_null", column=column)
    allowed = min(null_rate * (1 + margin), 1.0)
    mostly = math.floor((1 - allowed) * 1000) / 1000
    if mostly <= 0:
        mostly = float(f"{(1 - null_rate) / 2:.3g}")
    return _expectation("expect_column_values_to_not_be_null", column=column, mostly=mostly)


def _range(values: pd.Series, margin: float) -> dict[str, int | float]:
    """The observed range widened on each side by ``margin`` times its span (or its value, if constant).

    The low bound stays at 0 or above when nothing was negative. Integer columns get integer bounds within
    their dtype; float bounds are rounded outwards to about four significant digits of the range and stay
    finite. ``values`` are finite and not null.
    """
    if ptypes.is_integer_dtype(values.dtype):
        return _integer_range(int(values.min()), int(values.max()), margin, np.iinfo(values.dtype))
    return _float_range(float(values.min()), float(values.max()), margin)


def _integer_range(low: int, high: int, margin: float, limits: np.iinfo) -> dict[str, int | float]:
    slack = margin * float(high - low or abs(low) or 1)
    wide_low = max(low - slack, 0.0 if low >= 0 else float(limits.min))
    wide_high = min(high + slack, float(limits.max))
    return {
        "min_value": min(low, max(math.ceil(wide_low), int(limits.min))),
        "max_value": max(high, min(math.floor(wide_high), int(limits.max))),
    }


def _float_range(low: float, high: float, margin: float) -> dict[str, int | float]:
    span = min(high - low, FLOAT_MAX) or abs(low) or 1.0  # high - low overflows near +-1.8e308
    slack = margin * span
    wide_low = max(low - slack, 0.0 if low >= 0 else -FLOAT_MAX)
    wide_high = min(high + slack, FLOAT_MAX)
    exponent = math.floor(math.log10(min(wide_high - wide_low, FLOAT_MAX) or 1.0)) - 3
    step, digits = 10.0**exponent, max(0, -exponent)
    if step > 0:  # 0 when the range is subnormal: no rounding then
        wide_low = round(math.floor(wide_low / step) * step, digits)
        wide_high = round(math.ceil(wide_high / step) * step, digits)
    return {"min_value": min(low, max(wide_low, -FLOAT_MAX)), "max_value": max(high, min(wide_high, FLOAT_MAX))}
