"""The GX gate over many batches: one run over their union when the suite allows, each batch alone otherwise."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.features import batch_gate
from airflow_mlops_provider.core.validation import suites
from demo import data as demo_data
from tests.paths import DAGS

SUITE: dict[str, Any] = json.loads((DAGS / "expectations" / "churn_raw_batch.json").read_text())


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every GX run made (the real GX runs; only counted)."""
    seen: list[int] = []
    real = suites.run_suite

    def counted(frame: pd.DataFrame, suite: Any) -> Any:
        seen.append(len(frame))
        return real(frame, suite)

    monkeypatch.setattr(suites, "run_suite", counted)
    return seen


def batches(count: int, rows: int = 100) -> dict[str, pd.DataFrame]:
    return {f"b{i}": demo_data.generate_batch(rows, pd.Timestamp("2024-01-01T00:00Z") + pd.Timedelta(days=i), seed=i)
            for i in range(count)}  # fmt: skip


def test_good_batches_are_validated_together_and_counted_alone(runs: list[int]) -> None:
    verdicts = batch_gate.validate_batches(batches(5), SUITE)
    assert [v.uri for v in verdicts] == [f"b{i}" for i in range(5)]
    assert all(v.result.success and not v.alone for v in verdicts)
    assert [v.result.row_count for v in verdicts] == [100] * 5
    assert verdicts[0].result.statistics["evaluated_expectations"] == len(SUITE["expectations"])
    assert runs == [500]  # the union only: each batch's row count is checked without GX


def test_a_bad_batch_is_found_alone_with_its_own_full_result(runs: list[int]) -> None:
    frames = batches(3)
    frames["b1"] = frames["b1"].assign(plan="gold")
    verdicts = {v.uri: v for v in batch_gate.validate_batches(frames, SUITE)}
    assert [verdicts[uri].result.success for uri in frames] == [True, False, True]
    assert all(v.alone for v in verdicts.values())
    alone = suites.summarize(suites.run_suite(frames["b1"], suites.load_suite(SUITE)), 100)
    assert verdicts["b1"].result == alone
    assert runs[0] == 300 and runs[1:4] == [100, 100, 100]


def test_a_batch_failing_its_own_expectations_is_validated_alone(runs: list[int]) -> None:
    frames = batches(3)
    frames["b2"] = frames["b2"].iloc[:0]  # an empty batch passes row-wise checks on the union, not its row count
    verdicts = {v.uri: v for v in batch_gate.validate_batches(frames, SUITE)}
    assert [verdicts[uri].result.success for uri in frames] == [True, True, False]
    assert [verdicts[uri].alone for uri in frames] == [False, False, True]
    assert "row" in verdicts["b2"].result.message.lower()


def test_batches_of_different_schemas_are_validated_alone(runs: list[int]) -> None:
    frames = batches(2)
    frames["b1"] = frames["b1"].assign(support_calls=frames["b1"]["support_calls"].astype(float))
    verdicts = batch_gate.validate_batches(frames, SUITE)
    assert [v.result.success for v in verdicts] == [True, False] and all(v.alone for v in verdicts)
    assert runs == [100, 100]


@pytest.mark.parametrize(
    ("expectation", "row_wise"),
    [
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}, True),
        ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "mostly": 0.9}}, False),
        ({"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}}, True),
        ({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}, False),
        ({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "a", "min_value": 1}}, False),
    ],
)
def test_only_row_wise_expectations_run_on_the_union(expectation: dict[str, Any], row_wise: bool) -> None:
    assert batch_gate.is_row_wise(expectation) is row_wise


def test_a_batch_outside_the_row_count_bounds_is_validated_alone(runs: list[int]) -> None:
    bound = {"type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 150}}
    suite = {**SUITE, "expectations": [*SUITE["expectations"], bound]}
    frames = {**batches(2), "big": batches(3, rows=200)["b2"]}
    verdicts = {v.uri: v for v in batch_gate.validate_batches(frames, suite)}
    assert [(verdicts[uri].result.success, verdicts[uri].alone) for uri in frames] == [
        (True, False), (True, False), (False, True)
    ]  # fmt: skip
    assert [f.expectation_type for f in verdicts["big"].result.failures] == ["expect_table_row_count_to_be_between"]
    assert runs == [400, 200]  # the union, then the failing batch alone


def test_other_table_expectations_still_run_per_batch_in_gx(runs: list[int]) -> None:
    mean = {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "tenure_months", "min_value": 0}}
    suite = {**SUITE, "expectations": [*SUITE["expectations"], mean]}
    verdicts = batch_gate.validate_batches(batches(3), suite)
    assert all(v.result.success and not v.alone for v in verdicts)
    assert runs == [300, 100, 100, 100]


@pytest.mark.parametrize(
    ("kwargs", "rows", "holds"),
    [
        ({"min_value": 1}, 0, False),
        ({"min_value": 1}, 1, True),
        ({"min_value": 1, "strict_min": True}, 1, False),
        ({"max_value": 10}, 10, True),
        ({"max_value": 10, "strict_max": True}, 10, False),
        ({"min_value": 2, "max_value": 4}, 5, False),
        ({"min_value": 2.5, "max_value": 4}, 3, True),
    ],
)
def test_row_count_bounds_are_judged_as_gx_judges_them(kwargs: dict[str, Any], rows: int, holds: bool) -> None:
    check = batch_gate.row_count_check({"type": "expect_table_row_count_to_be_between", "kwargs": kwargs})
    assert check is not None and check(rows) is holds
    frame = pd.DataFrame({"a": range(rows)})
    suite = {"name": "s", "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": kwargs}]}
    assert suites.run_suite(frame, suites.load_suite(suite)).success is holds


@pytest.mark.parametrize(
    "expectation",
    [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "row_condition": "a > 0"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": {"$PARAMETER": "low"}}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {}},
        {"type": "expect_table_row_count_to_equal", "kwargs": {"value": True}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "a", "min_value": 1}},
    ],
)
def test_gx_judges_the_row_counts_not_told_by_plain_bounds(expectation: dict[str, Any]) -> None:
    assert batch_gate.row_count_check(expectation) is None


def test_an_exact_row_count_is_checked_without_gx() -> None:
    check = batch_gate.row_count_check({"type": "expect_table_row_count_to_equal", "kwargs": {"value": 3}})
    assert check is not None and check(3) and not check(4)
