"""The GX gate over many raw batches at once: one validation run for all of them when the suite allows, and
each batch alone when it fails, so that every bad batch is found (and quarantined) on its own.

A GX run costs about 0.2 s of fixed work per suite of some 35 expectations, whatever the rows. Row-wise
expectations (each row, or each column's type or presence, judged on its own) that hold on the batches
put together hold on each batch, provided the batches share one schema. They run once on the union. The
others (row counts, aggregates, ``mostly`` below 1) run per batch, in a suite of their own. A batch whose
own expectations fail, or every batch of a union that fails, is validated alone with the whole suite, so
its result and Data Docs are exactly those of a validation of that batch alone.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    own = [e for e in expectations if not is_row_wise(e)]

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
        if frame.empty or (own_suite is not None and not suites.run_suite(frame, own_suite).success):
            verdicts.append(alone(uri))
        else:
            verdicts.append(BatchVerdict(uri, _passed(str(suite["name"]), len(expectations), len(frame)), union, False))
    return verdicts


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
