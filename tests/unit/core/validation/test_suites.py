"""core.validation: gate results, their messages, strict suite loading, and GX's side effects kept in check."""

from __future__ import annotations

import json
import logging
import socket
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.validation.suites import (
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
        (suite(("expect_column_to_be_nice", {"column": "age"})), r"expectation #0 \(expect_column_to_be_nice\)"),
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
