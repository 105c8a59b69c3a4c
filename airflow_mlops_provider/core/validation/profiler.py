"""Profile reference data into a starter Great Expectations 1.x suite (GX 1.x dropped its profilers).

The suite is plain JSON in GX 1.x's format, built without importing GX. Per column it expects presence,
the dtype, the null rate, and either a value range (numeric columns) or a value set (string columns with
few distinct values); for the table, a row-count range. Every bound contains the reference data, widened
by a margin, so the suite passes on the data it came from. Datetime columns get no range (time moves on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pandas.api import types as ptypes


@dataclass(frozen=True)
class ProfileOptions:
    """How loose the starter bounds are.

    :param margin: relative slack: numeric ranges widen by ``margin`` times the observed span on each
        side (never below 0 for non-negative columns), the row count may vary by ``margin`` times the
        reference count, and a null rate ``p`` may grow to ``p * (1 + margin)``.
    :param max_categories: string columns with at most this many distinct values get a value set.
    :param no_range: numeric columns that get no range, e.g. identifiers.
    """

    margin: float = 0.1
    max_categories: int = 20
    no_range: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
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
    :raises ValueError: if ``df`` is empty or ``options.no_range`` names an unknown column.
    """
    options = options or ProfileOptions()
    if df.empty:
        raise ValueError("cannot profile an empty dataset")
    unknown = sorted(set(options.no_range) - set(map(str, df.columns)))
    if unknown:
        raise ValueError(f"no_range names columns that are not in the data: {unknown}")
    expectations = [_expectation("expect_table_row_count_to_be_between", **_row_count_bounds(len(df), options.margin))]
    for column in df.columns:
        expectations += _column_expectations(str(column), df[column], options)
    return {
        "name": name,
        "expectations": expectations,
        "meta": {
            "profile": {
                "source": source,
                "rows": len(df),
                "margin": options.margin,
                "max_categories": options.max_categories,
            }
        },
        "notes": "Starter suite profiled from reference data: review every bound before relying on it.",
    }


def _expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _row_count_bounds(rows: int, margin: float) -> dict[str, int]:
    low, high = round(rows * max(0.0, 1 - margin), 6), round(rows * (1 + margin), 6)  # 50000 * 1.1 is not 55000.0
    return {"min_value": math.floor(low), "max_value": math.ceil(high)}


def _column_expectations(column: str, series: pd.Series, options: ProfileOptions) -> list[dict[str, Any]]:
    """Presence, dtype, null rate, and a range or a value set for one column."""
    expectations = [_expectation("expect_column_to_exist", column=column)]
    gx_type = _gx_type(series)
    if gx_type is not None:
        expectations.append(_expectation("expect_column_values_to_be_of_type", column=column, type_=gx_type))
    nulls = _null_expectation(column, float(series.isna().mean()), options.margin)
    if nulls is not None:
        expectations.append(nulls)
    values = series.dropna()
    if values.empty:
        return expectations
    if _is_number(series) and column not in options.no_range:
        expectations.append(
            _expectation("expect_column_values_to_be_between", column=column, **_range(values, options.margin))
        )
    elif gx_type == "str" and values.nunique() <= options.max_categories:
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


def _is_number(series: pd.Series) -> bool:
    return ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype)


def _null_expectation(column: str, null_rate: float, margin: float) -> dict[str, Any] | None:
    """No nulls if there were none; else at most ``null_rate * (1 + margin)``; nothing if that reaches 1."""
    if null_rate == 0:
        return _expectation("expect_column_values_to_not_be_null", column=column)
    allowed = null_rate * (1 + margin)
    if allowed >= 1:
        return None
    mostly = math.floor((1 - allowed) * 1000) / 1000
    return _expectation("expect_column_values_to_not_be_null", column=column, mostly=mostly)


def _range(values: pd.Series, margin: float) -> dict[str, int | float]:
    """The observed range widened on each side by ``margin`` times its span (or its value, if constant).

    The low bound stays at 0 or above when nothing was negative. Integer columns get integer bounds;
    float bounds are rounded outwards to about four significant digits of the range.
    """
    low, high = values.min(), values.max()
    slack = margin * (float(high - low) or abs(float(low)) or 1.0)
    wide_low, wide_high = float(low) - slack, float(high) + slack
    if low >= 0:
        wide_low = max(wide_low, 0.0)
    if ptypes.is_integer_dtype(values.dtype):
        return {"min_value": min(int(low), math.ceil(wide_low)), "max_value": max(int(high), math.floor(wide_high))}
    step = 10.0 ** (math.floor(math.log10(wide_high - wide_low or 1.0)) - 3)
    digits = max(0, -math.floor(math.log10(step)))
    return {
        "min_value": min(float(low), round(math.floor(wide_low / step) * step, digits)),
        "max_value": max(float(high), round(math.ceil(wide_high / step) * step, digits)),
    }
