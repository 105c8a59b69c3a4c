"""core.validation: gate results, their messages, strict suite loading, and GX's side effects kept in check."""

from __future__ import annotations

import json
import logging
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.validation.suites import (
    MAX_FAILURES,
    MAX_ITEMS,
    MAX_LINE_CHARS,
    MAX_VALUE_CHARS,
    load_suite,
    render_data_docs,
    run_suite,
    summarize,
    validate_frame,
)

FRAME = pd.DataFrame(
    {
        "age": [21, 35, 47, 62, 150, -3],
        "plan": ["basic", "basic", "premium", "gold", "basic", "platinum"],
        "score": [0.1, None, 0.3, None, 0.5, 0.6],
    }
)


def suite(*expectations: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"name": "people", "expectations": [{"type": kind, "kwargs": kwargs} for kind, kwargs in expectations]}


#: Passes on FRAME, so each failure test sees exactly one failure among two expectations.
AGE_EXISTS = ("expect_column_to_exist", {"column": "age"})
PASSING = suite(
    ("expect_column_to_exist", {"column": "age"}),
    ("expect_column_values_to_be_of_type", {"column": "age", "type_": "int64"}),
    ("expect_column_values_to_be_between", {"column": "age", "min_value": -10, "max_value": 200}),
    ("expect_column_values_to_be_in_set", {"column": "plan", "value_set": ["basic", "premium", "gold", "platinum"]}),
    ("expect_column_values_to_not_be_null", {"column": "score", "mostly": 0.5}),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 10}),
)


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (("expect_column_to_exist", {"column": "email"}), "column 'email' is missing"),
        (
            ("expect_column_values_to_be_of_type", {"column": "age", "type_": "float64"}),
            "column 'age' has type int64, expected float64",
        ),
        (
            ("expect_column_values_to_be_in_type_list", {"column": "score", "type_list": ["int64", "int32"]}),
            "column 'score' has type float64, expected one of ['int64', 'int32']",
        ),
        (("expect_column_values_to_not_be_null", {"column": "score"}), "column 'score' has 2 nulls (33.3%)"),
        (
            ("expect_column_values_to_not_be_null", {"column": "score", "mostly": 0.9}),
            "column 'score' has 2 nulls (33.3%) (at most 10% allowed)",
        ),
        (
            ("expect_column_values_to_be_between", {"column": "age", "min_value": 0, "max_value": 120}),
            "column 'age' has 2 values (33.3%) outside [0, 120]; e.g. 150, -3",
        ),
        (
            ("expect_column_values_to_be_in_set", {"column": "plan", "value_set": ["basic", "premium"]}),
            "column 'plan' has 2 values (33.3%) not in ['basic', 'premium']; e.g. 'gold', 'platinum'",
        ),
        (
            ("expect_table_row_count_to_be_between", {"min_value": 1000}),
            "row count 6 is outside [1000, inf)",
        ),
        (
            ("expect_column_values_to_be_between", {"column": "email", "min_value": 0}),
            "expect_column_values_to_be_between on column 'email' could not be evaluated:",
        ),
        (
            ("expect_column_distinct_values_to_contain_set", {"column": "plan", "value_set": ["basic", "pro"]}),
            "column 'plan' lacks ['pro'] of the required values ['basic', 'pro']",
        ),
        (
            ("expect_column_mean_to_be_between", {"column": "age", "max_value": 10}),
            "expect_column_mean_to_be_between failed on column 'age': observed 52.0, expected {'max_value': 10",
        ),
        (
            ("expect_column_values_to_be_unique", {"column": "plan"}),
            "expect_column_values_to_be_unique failed on column 'plan': 3 values (50%) unexpected; e.g. 'basic'",
        ),
    ],
)
def test_each_failure_has_a_clear_message(expectation: tuple[str, dict[str, Any]], message: str) -> None:
    result = validate_frame(FRAME, suite(AGE_EXISTS, expectation))
    assert not result.success
    (failure,) = result.failures
    assert failure.message.startswith(message)
    assert failure.expectation_type == expectation[0]
    assert f"- {failure.message}" in result.message
    assert result.message.startswith("Suite 'people' failed on 6 rows: 1 of 2 expectations failed:")


def test_failure_details_are_compact_and_json_safe() -> None:
    result = validate_frame(
        FRAME, suite(("expect_column_values_to_be_between", {"column": "age", "min_value": 0})), sample_size=1
    )
    record = json.loads(json.dumps(result.to_record()))
    (failure,) = record["failures"]
    assert failure["column"] == "age"
    assert failure["unexpected_count"] == 1
    assert failure["sample"] == [-3]
    assert failure["kwargs"] == {"column": "age", "min_value": 0}
    assert record["statistics"]["unsuccessful_expectations"] == 1
    assert record["message"] == result.message


def test_dependent_checks_on_a_missing_column_say_so() -> None:
    result = validate_frame(
        FRAME,
        suite(
            ("expect_column_to_exist", {"column": "email"}),
            ("expect_column_values_to_be_of_type", {"column": "email", "type_": "str"}),
        ),
    )
    assert sorted(f.message for f in result.failures) == [
        "column 'email' is missing",
        "expect_column_values_to_be_of_type on column 'email' could not be evaluated: the column is missing",
    ]


def test_a_passing_suite_passes() -> None:
    result = validate_frame(FRAME, PASSING)
    assert result.success
    assert result.failures == []
    assert result.row_count == 6
    assert result.message == "Suite 'people' passed on 6 rows: all 6 expectations met."


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"expectations": PASSING["expectations"]}, "needs a non-empty 'name'"),
        ({"name": "empty", "expectations": []}, "has no expectations: it would pass any data"),
        (
            suite(("expect_column_to_be_nice", {"column": "age"})),
            "expectation #0: unknown expectation type 'expect_column_to_be_nice'",
        ),
        (suite(("expect_column_values_to_be_between", {"column": "age", "min_vaule": 1})), "min_vaule"),
        ({**PASSING, "data_asset_type": None}, "not a GX 1.x suite"),
    ],
)
def test_invalid_suites_are_rejected_not_silently_shrunk(raw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_suite(raw)


def test_data_docs_render_without_a_site_network_progress_bars_log_chatter_or_temp_dirs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # everything GX puts in the temp dir lands here
    plan_is_basic = ("expect_column_values_to_be_in_set", {"column": "plan", "value_set": ["basic"]})
    with caplog.at_level(logging.INFO):
        gx_result = run_suite(FRAME, load_suite(suite(plan_is_basic)))
        html = render_data_docs(gx_result)

    assert list(tmp_path.iterdir()) == [], "GX left temporary files behind"
    assert "Calculating Metrics" not in capfd.readouterr().err
    assert [r.getMessage() for r in caplog.records if r.name.startswith("great_expectations")] == []
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "people" in html and "platinum" in html
    assert not summarize(gx_result, len(FRAME)).success


# --- Bounded output, whatever the data holds ----------------------------------------------------------------


def test_a_10_mb_value_gives_a_bounded_message_record_and_data_docs() -> None:
    huge = "x" * 10_000_000
    frame = pd.DataFrame({"plan": ["basic", "premium", huge, huge + "y"], "age": [1, 2, 3, 4]})
    plan_set = suite(("expect_column_values_to_be_in_set", {"column": "plan", "value_set": ["basic", "premium"]}))
    gx_result = run_suite(frame, load_suite(plan_set))
    result = summarize(gx_result, len(frame))

    assert not result.success
    (failure,) = result.failures
    clipped = "x" * MAX_VALUE_CHARS + f"... ({10_000_000 - MAX_VALUE_CHARS} more characters)"
    assert failure.sample == [clipped, "x" * MAX_VALUE_CHARS + f"... ({10_000_001 - MAX_VALUE_CHARS} more characters)"]
    assert failure.message.startswith(f"column 'plan' has 2 values (50%) not in ['basic', 'premium']; e.g. '{'x' * 50}")
    assert len(failure.message) <= MAX_LINE_CHARS
    assert len(result.message) < 1_000
    assert len(json.dumps(result.to_record())) < 4_000
    assert len(render_data_docs(gx_result)) < 200_000, "the page shows values cut to MAX_DOCS_VALUE_CHARS"
    assert gx_result.results[0].result["partial_unexpected_list"][0] == huge, "rendering leaves the result alone"


def test_many_failures_are_listed_up_to_the_cap_and_counted_in_full() -> None:
    columns = {f"c{i}": [1, 2] for i in range(MAX_FAILURES + 7)}
    failing = [("expect_column_values_to_be_between", {"column": c, "max_value": 0}) for c in columns]
    result = validate_frame(pd.DataFrame(columns), suite(*failing))
    assert result.statistics["unsuccessful_expectations"] == MAX_FAILURES + 7
    assert len(result.failures) == MAX_FAILURES
    assert result.message.endswith("\n- ... (7 more failures: see the Data Docs)")
    assert result.message.count("\n- ") == MAX_FAILURES + 1


def test_large_arguments_and_observed_values_are_cut_with_a_count() -> None:
    frame = pd.DataFrame({f"c{i}": [f"v{j}" for j in range(500)] for i in range(300)})
    result_suite = suite(
        ("expect_column_values_to_be_in_set", {"column": "c0", "value_set": [f"w{i}" for i in range(1000)]}),
        ("expect_column_distinct_values_to_be_in_set", {"column": "c1", "value_set": ["v0"]}),
        ("expect_table_columns_to_match_set", {"column_set": ["c0"]}),
    )
    result = validate_frame(frame, result_suite)
    by_type = {f.expectation_type: f for f in result.failures}
    in_set, distinct, columns = (by_type[e["type"]] for e in result_suite["expectations"])
    assert in_set.kwargs["value_set"] == [f"w{i}" for i in range(MAX_ITEMS)] + [f"... ({1000 - MAX_ITEMS} more)"]
    assert distinct.unexpected_count == 499 and distinct.sample == ["v1", "v10", "v100", "v101", "v102"]
    assert columns.observed_value[-1] == f"... ({300 - MAX_ITEMS} more)"
    assert len(json.dumps(result.to_record())) < 5_000


def test_the_record_is_strict_json_with_infinities() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf, -np.inf, np.nan]})
    result = validate_frame(frame, suite(("expect_column_values_to_be_between", {"column": "x", "max_value": 10})))
    (failure,) = result.failures
    assert "e.g. inf" in failure.message
    record = result.to_record()
    json.dumps(record, allow_nan=False)  # PostgreSQL's JSON rejects Infinity: XCom must not carry it
    assert record["failures"][0]["sample"] == ["Infinity"]


def test_an_empty_dataset_never_passes() -> None:
    empty = FRAME.iloc[:0]
    result = validate_frame(empty, PASSING_WITHOUT_ROW_COUNT)
    assert result.statistics["unsuccessful_expectations"] == 0, "GX alone passes every column check on 0 rows"
    assert not result.success
    assert result.message == "Suite 'people' failed: the dataset has no rows, so no expectation checked anything."
    assert not result.to_record()["success"]


PASSING_WITHOUT_ROW_COUNT = suite(*((e["type"], e["kwargs"]) for e in PASSING["expectations"][:-1]))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b'{"name": "s", "expectations": [', "the suite is not valid JSON: Expecting value: line 1 column 32"),
        ('{"name": "s", "expectations": {"type": "x"}}', "suite 's': 'expectations' must be a list, got dict"),
        ('{"name": "s", "expectations": ["x"]}', "suite 's': expectation #0 is not an object with a 'type': \"x\""),
        ('{"name": "s", "expectations": [{"kwargs": {}}]}', "expectation #0 is not an object with a 'type'"),
        (
            '{"name": "s", "expectations": [{"type": "expect_column_values_to_be_between", '
            '"kwargs": {"column": "a", "min_value": "abc"}}]}',
            r"suite 's': expectation #0 \(expect_column_values_to_be_between\) is invalid: .*min_value",
        ),
    ],
)
def test_a_suite_given_as_text_is_parsed_with_specific_errors(text: str | bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_suite(text)


def test_a_suite_given_as_text_loads() -> None:
    assert load_suite(json.dumps(PASSING)).name == "people"


def test_every_argument_of_a_failed_expectation_is_kept_only_its_values_are_cut() -> None:
    kwargs = {
        "column": "age",
        "min_value": 0,
        "max_value": 100,
        "strict_min": True,
        "strict_max": True,
        "mostly": 0.99,
        "row_condition": 'plan!="gold"',
        "condition_parser": "pandas",
        "catch_exceptions": True,
        "description": "d" * 1_000,
        "meta": {"owner": "me"},
    }
    result = validate_frame(FRAME, suite(("expect_column_values_to_be_between", kwargs)))
    (failure,) = result.failures
    assert failure.column == "age"
    assert set(failure.kwargs) >= set(kwargs) - {"description", "meta", "catch_exceptions"}  # GX keeps those apart
    assert all(len(json.dumps(value)) < 200 for value in failure.kwargs.values())
