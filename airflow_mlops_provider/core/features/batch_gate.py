"""The GX gate over many raw batches at once: one validation run for all of them when the suite allows, and
each batch alone when it fails, so that every bad batch is found (and quarantined) on its own.

A GX run costs about 0.2 s of fixed work per suite of some 35 expectations, whatever the rows. Row-wise
expectations (each row, or each column's type or presence, judged on its own) that hold on the batches
put together hold on each batch, provided the batches share one schema. They run once on the union. Row
counts with plain bounds are checked on each batch's row count, without a GX run; the other expectations
(aggregates, ``mostly`` below 1, row counts with a row condition) run per batch, in a suite of their own.
A batch whose own expectations fail, or every batch of a union that fails, is validated alone with the
whole suite, so its result and Data Docs are exactly those of a validation of that batch alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from airflow_mlops_provider.core.validation import suites

#: Expectation types that hold on every part of a frame when they hold on the whole (the parts sharing a schema).
_ROW_WISE = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_compound_columns_to_be_unique",
        "expect_select_column_values_to_be_unique_within_record",
    }
)
_ROW_WISE_PREFIXES = (
    "expect_column_values_to_",
    "expect_column_value_lengths_to_",
    "expect_column_pair_values_",
    "expect_multicolumn_values_to_",
)


#: The arguments of a row-count expectation that :func:`row_count_check` reads; with any other, GX decides.
_ROW_COUNT_ARGUMENTS = {
    "expect_table_row_count_to_equal": frozenset({"value"}),
    "expect_table_row_count_to_be_between": frozenset({"min_value", "max_value", "strict_min", "strict_max"}),
}


@dataclass(frozen=True)
class BatchVerdict:
    """The gate's verdict on one batch.

    :param uri: the batch.
    :param result: its compact result (the row count is the batch's own).
    :param gx_result: GX's full result that covers it: its own, or the union's.
    :param alone: whether it was validated alone (its own Data Docs) or with the other batches.
    """

    uri: str
    result: suites.ValidationResult
    gx_result: Any
    alone: bool


def is_row_wise(expectation: Mapping[str, Any]) -> bool:
    """Whether an expectation (in its JSON form) that holds on a union of batches holds on each of them.

    :param expectation: one item of a suite's ``expectations``.
    """
    kind = str(expectation.get("type", ""))
    mostly = (expectation.get("kwargs") or {}).get("mostly", 1)
    return (kind in _ROW_WISE or kind.startswith(_ROW_WISE_PREFIXES)) and (mostly is None or mostly >= 1)


def row_count_check(expectation: Mapping[str, Any]) -> Callable[[int], bool] | None:
    """What a row-count expectation (in its JSON form) checks, as a test of a row count, as GX judges it;
    ``None`` for any other expectation, or one whose arguments are not plain numbers and flags.

    :param expectation: one item of a suite's ``expectations``.
    """
    kind = str(expectation.get("type", ""))
    kwargs = dict(expectation.get("kwargs") or {})
    if kind not in _ROW_COUNT_ARGUMENTS or not set(kwargs) <= _ROW_COUNT_ARGUMENTS[kind]:
        return None
    if kind == "expect_table_row_count_to_equal":
        value = kwargs.get("value")
        return (lambda rows: rows == value) if _is_number(value) else None
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_min, strict_max = kwargs.get("strict_min", False), kwargs.get("strict_max", False)
    if (low is None and high is None) or not all(bound is None or _is_number(bound) for bound in (low, high)):
        return None
    if not isinstance(strict_min, bool) or not isinstance(strict_max, bool):
        return None

    def holds(rows: int) -> bool:
        above = low is None or (rows > low if strict_min else rows >= low)
        return above and (high is None or (rows < high if strict_max else rows <= high))

    return holds


def validate_batches(
    frames: Mapping[str, pd.DataFrame], suite: Mapping[str, Any], sample_size: int = suites.DEFAULT_SAMPLE_SIZE
) -> list[BatchVerdict]:
    """Validate each of ``frames`` against ``suite``, with as few GX runs as the suite allows.

    :param frames: batch URI -> its rows.
    :param suite: the parsed JSON of a GX 1.x suite.
    :param sample_size: distinct unexpected values kept per failed expectation.
    :raises ValueError: an invalid suite (see :func:`~airflow_mlops_provider.core.validation.suites.load_suite`).
    """
    whole = suites.load_suite(suite)
    expectations = list(suite.get("expectations") or [])
    shared = [e for e in expectations if is_row_wise(e)]
    others = [(e, row_count_check(e)) for e in expectations if not is_row_wise(e)]
    counts = [check for _, check in others if check is not None]
    own = [e for e, check in others if check is None]

    def alone(uri: str) -> BatchVerdict:
        gx_result = suites.run_suite(frames[uri], whole)
        return BatchVerdict(uri, suites.summarize(gx_result, len(frames[uri]), sample_size), gx_result, alone=True)

    if len(frames) < 2 or not shared or not _same_schema(list(frames.values())):
        return [alone(uri) for uri in frames]
    union_suite = suites.load_suite({**suite, "expectations": shared})
    union = suites.run_suite(pd.concat(frames.values(), ignore_index=True), union_suite)
    if not union.success:
        return [alone(uri) for uri in frames]
    own_suite = suites.load_suite({**suite, "expectations": own}) if own else None
    verdicts = []
    for uri, frame in frames.items():
        # An empty batch never passes, whatever the suite: only the whole suite's run says so.
        if (
            frame.empty
            or not all(holds(len(frame)) for holds in counts)
            or (own_suite is not None and not suites.run_suite(frame, own_suite).success)
        ):
            verdicts.append(alone(uri))
        else:
            verdicts.append(BatchVerdict(uri, _passed(str(suite["name"]), len(expectations), len(frame)), union, False))
    return verdicts


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a plain number (not a flag, nor a suite parameter)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_schema(frames: list[pd.DataFrame]) -> bool:
    """Whether the frames have the same columns, in the same order, with the same dtypes."""
    first = frames[0].dtypes
    return all(frame.dtypes.index.equals(first.index) and frame.dtypes.equals(first) for frame in frames[1:])


def _passed(suite_name: str, expectations: int, rows: int) -> suites.ValidationResult:
    """The result of a batch that met every expectation."""
    statistics = {
        "evaluated_expectations": expectations,
        "successful_expectations": expectations,
        "unsuccessful_expectations": 0,
        "success_percent": 100.0,
    }
    return suites.ValidationResult(suite_name, True, rows, statistics, [])
