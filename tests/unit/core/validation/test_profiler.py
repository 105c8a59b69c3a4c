"""The starter-suite generator: core.suite_profiler and ``airflow-mlops suite init``."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.cli import main
from airflow_mlops_provider.contracts import Split
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.core.validation.profiler import ProfileOptions, profile_suite
from airflow_mlops_provider.core.validation.suites import validate_frame
from demo import data as demo_data

HEAVY = ["great_expectations", "pandas", "pyarrow", "numpy"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return demo_data.assign_splits(demo_data.generate_batch(3_000, "2024-03-01", days=7, seed=3))


@pytest.fixture(scope="module")
def starter(reference: pd.DataFrame) -> dict[str, Any]:
    return profile_suite(reference, "churn", ProfileOptions(no_range=("customer_id",)), source="demo.parquet")


def kwargs_of(suite: dict[str, Any], kind: str, column: str) -> dict[str, Any]:
    (kwargs,) = [
        e["kwargs"] for e in suite["expectations"] if e["type"] == kind and e["kwargs"].get("column") == column
    ]
    return kwargs


def test_starter_suite_passes_on_its_source_data(reference: pd.DataFrame, starter: dict[str, Any]) -> None:
    result = validate_frame(reference, starter)
    assert result.success, result.message
    assert result.statistics["evaluated_expectations"] == len(starter["expectations"])


def test_starter_suite_round_trips_through_gx(starter: dict[str, Any]) -> None:
    import great_expectations as gx

    loaded: dict[str, Any] = gx.ExpectationSuite(**json.loads(json.dumps(starter))).to_json_dict()
    assert loaded["name"] == "churn"
    assert [(e["type"], e["kwargs"]) for e in loaded["expectations"]] == [
        (e["type"], e["kwargs"]) for e in starter["expectations"]
    ]


def test_starter_suite_profiles_presence_types_nulls_ranges_sets_and_rows(
    reference: pd.DataFrame, starter: dict[str, Any]
) -> None:
    kinds = {(e["type"], e["kwargs"].get("column")) for e in starter["expectations"]}
    for column in reference.columns:
        assert ("expect_column_to_exist", column) in kinds
        assert ("expect_column_values_to_be_of_type", column) in kinds
        assert ("expect_column_values_to_not_be_null", column) in kinds
    assert kwargs_of(starter, "expect_column_values_to_be_of_type", "event_timestamp")["type_"] == "Timestamp"
    assert kwargs_of(starter, "expect_column_values_to_be_of_type", "plan")["type_"] == "str"
    assert kwargs_of(starter, "expect_column_values_to_be_in_set", "plan")["value_set"] == sorted(demo_data.PLANS)
    assert kwargs_of(starter, "expect_column_values_to_be_in_set", "split")["value_set"] == sorted(Split.ALL)
    tenure = kwargs_of(starter, "expect_column_values_to_be_between", "tenure_months")
    low, high = reference["tenure_months"].min(), reference["tenure_months"].max()
    margin = 0.1 * (high - low)
    assert tenure == {
        "column": "tenure_months",
        "min_value": max(0, int(np.ceil(low - margin))),
        "max_value": int(high + margin),
    }
    assert ("expect_column_values_to_be_between", "customer_id") not in kinds  # no_range
    assert ("expect_column_values_to_be_between", "event_timestamp") not in kinds  # time moves on
    rows = [e["kwargs"] for e in starter["expectations"] if e["type"] == "expect_table_row_count_to_be_between"]
    assert rows == [{"min_value": 2_700, "max_value": 3_300}]
    assert starter["meta"]["profile"] == {"source": "demo.parquet", "rows": 3_000, "margin": 0.1, "max_categories": 20}


def test_starter_suite_fails_on_a_perturbed_copy(reference: pd.DataFrame, starter: dict[str, Any]) -> None:
    broken = reference.drop(columns=["region"]).copy()
    broken.loc[broken.index[:10], "tenure_months"] = -5
    broken.loc[broken.index[:7], "plan"] = "gold"
    broken.loc[broken.index[:4], "usage_gb"] = np.nan
    broken["support_calls"] = broken["support_calls"].astype("float64")
    result = validate_frame(broken, starter)
    assert not result.success
    messages = "\n".join(f.message for f in result.failures)
    assert "column 'region' is missing" in messages
    assert "column 'tenure_months' has 10 values" in messages
    assert "column 'plan' has 7 values" in messages and "'gold'" in messages
    assert "column 'usage_gb' has 4 nulls" in messages
    assert "column 'support_calls' has type float64, expected int64" in messages


def test_nullable_float_and_constant_columns() -> None:
    frame = pd.DataFrame({"x": [0.5, None, 1.5, 2.0] * 25, "k": [7.25] * 100, "flag": [True, False] * 50})
    suite = profile_suite(frame, "small", ProfileOptions(margin=0.2))
    assert kwargs_of(suite, "expect_column_values_to_not_be_null", "x") == {"column": "x", "mostly": 0.7}
    constant = kwargs_of(suite, "expect_column_values_to_be_between", "k")
    assert constant["min_value"] <= 7.25 * 0.8 and constant["max_value"] >= 7.25 * 1.2
    assert not [e for e in suite["expectations"] if e["kwargs"].get("column") == "flag" and "between" in e["type"]]
    assert validate_frame(frame, suite).success
    assert not validate_frame(frame.assign(x=[None, None, 1.0, None] * 25), suite).success


@pytest.mark.parametrize(
    ("frame", "options", "error"),
    [
        (pd.DataFrame({"a": []}), ProfileOptions(), "empty"),
        (pd.DataFrame({"a": [1]}), ProfileOptions(no_range=("b",)), r"not in the data: \['b'\]"),
    ],
)
def test_bad_profile_input(frame: pd.DataFrame, options: ProfileOptions, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        profile_suite(frame, "x", options)


def test_negative_margin_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"margin must be a finite number >= 0, got -0\.1"):
        ProfileOptions(margin=-0.1)


def test_cli_suite_init_writes_a_checked_suite(
    tmp_path: Path, reference: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(tmp_path / "reference.parquet")
    write_dataset(reference, source)
    out = tmp_path / "expectations" / "churn_training_set.json"
    argv = ["suite", "init", "--from", source, "--out", str(out), "--no-range", "customer_id", "--margin", "0.2"]

    assert main(argv) == 0
    assert [p.name for p in out.parent.iterdir()] == [out.name], "written in place, no temporary file left"
    suite = json.loads(out.read_text())
    assert suite["name"] == "churn_training_set"
    assert suite["meta"]["profile"]["margin"] == 0.2
    assert f"to {out}" in capsys.readouterr().out
    assert validate_frame(reference, suite).success

    assert main(argv) == 2, "an existing suite is not overwritten without --force"
    assert "pass --force" in capsys.readouterr().err
    assert main([*argv, "--force", "--no-check", "--name", "renamed"]) == 0
    assert json.loads(out.read_text())["name"] == "renamed"


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "init", "--from", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "s.json")]) == 2
    assert "airflow-mlops: error: no such object" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    argv = ["suite", "init", "--from", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "folder"), "--force"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"airflow-mlops: error: {tmp_path / 'folder'} is a folder: --out names the suite's JSON file\n"
    )


def test_cli_help_imports_nothing_heavy() -> None:
    script = (
        "import json, sys\n"
        "from airflow_mlops_provider.cli import main\n"
        "try:\n    main(['suite', 'init', '--help'])\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert "--from URI" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [0, []]


def test_console_script_is_declared() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "airflow-mlops"]
    assert script.value == "airflow_mlops_provider.cli:main"


# --- Data a trustworthy suite cannot come from, and bounds that must not overflow ---------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"x": [-1e308, 1e308]}),
        pd.DataFrame({"x": [1.7e308, 1.79e308]}),
        pd.DataFrame({"x": [-1.79e308, -1.7e308]}),
        pd.DataFrame({"x": [5e-324, 1e-323]}),
        pd.DataFrame({"x": np.array([-(2**63), 2**63 - 1], dtype="int64")}),
        pd.DataFrame({"x": np.array([0, 2**64 - 1], dtype="uint64")}),
    ],
    ids=["float-span-overflows", "near-max", "near-min", "subnormal", "int64-limits", "uint64-limits"],
)
def test_extreme_values_get_finite_bounds_that_hold_them(frame: pd.DataFrame) -> None:
    suite = profile_suite(frame, "extreme")
    json.dumps(suite, allow_nan=False)  # no infinity in the suite
    bounds = kwargs_of(suite, "expect_column_values_to_be_between", "x")
    assert bounds["min_value"] <= frame["x"].min() and bounds["max_value"] >= frame["x"].max()
    if frame["x"].dtype.kind == "i":
        assert bounds["min_value"] >= np.iinfo(frame["x"].dtype).min
    assert validate_frame(frame, suite).success
    if frame["x"].dtype.kind == "f":
        assert not validate_frame(frame.assign(x=[frame["x"].iloc[0], np.inf]), suite).success, "inf is out of range"


def test_a_huge_margin_gives_open_ended_but_finite_bounds() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "n": [1, 2, 3]})
    suite = profile_suite(frame, "loose", ProfileOptions(margin=1e308))
    json.dumps(suite, allow_nan=False)
    rows = [e["kwargs"] for e in suite["expectations"] if e["type"] == "expect_table_row_count_to_be_between"]
    assert rows == [{"min_value": 0, "max_value": None}]
    assert kwargs_of(suite, "expect_column_values_to_be_between", "n") == {
        "column": "n",
        "min_value": 0,
        "max_value": np.iinfo("int64").max,
    }
    assert validate_frame(frame, suite).success


@pytest.mark.parametrize("margin", [float("inf"), float("nan"), -0.1])
def test_the_margin_must_be_a_finite_non_negative_number(margin: float) -> None:
    with pytest.raises(ValueError, match=f"margin must be a finite number >= 0, got {margin}"):
        ProfileOptions(margin=margin)


def test_infinite_values_are_refused_where_a_range_goes() -> None:
    frame = pd.DataFrame({"x": [1.0, -np.inf, 2.0, np.inf], "y": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match=r"column 'x' holds 2 infinite value\(s\) \(e\.g\. -inf\).*--no-range x"):
        profile_suite(frame, "inf")
    suite = profile_suite(frame, "inf", ProfileOptions(no_range=("x",)))
    assert ("expect_column_values_to_be_between", "x") not in {
        (e["type"], e["kwargs"].get("column")) for e in suite["expectations"]
    }
    assert validate_frame(frame, suite).success


def test_an_entirely_null_column_is_expected_to_stay_null_and_named_for_review() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 4, "y": [1, 2, 3, 4], "z": pd.Series([None] * 4, dtype=object)})
    suite = profile_suite(frame, "nulls")
    for column in ("x", "z"):
        assert kwargs_of(suite, "expect_column_values_to_be_null", column) == {"column": column}
        assert ("expect_column_values_to_not_be_null", column) not in {
            (e["type"], e["kwargs"].get("column")) for e in suite["expectations"]
        }
    assert suite["meta"]["profile"]["null_columns"] == ["x", "z"]
    assert validate_frame(frame, suite).success
    result = validate_frame(frame.assign(x=[1.0, np.nan, np.nan, np.nan]), suite)
    assert not result.success, "values arriving in a column that was entirely null are visible"
    assert "expect_column_values_to_be_null failed on column 'x': 1 value (25%) unexpected; e.g. 1.0" in result.message


def test_cli_names_entirely_null_columns_for_review(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reference.csv"
    source.write_text("id,note\n1,\n2,\n")
    assert main(["suite", "init", "--from", str(source), "--out", str(tmp_path / "s.json")]) == 0
    assert capsys.readouterr().out.endswith(
        "Review: ['note'] are entirely null in the reference data; the suite expects them to stay null\n"
    )


def test_a_mostly_null_column_still_fails_when_it_arrives_entirely_null() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 19 + [1.0], "y": range(20)})
    suite = profile_suite(frame, "sparse")
    assert kwargs_of(suite, "expect_column_values_to_not_be_null", "x") == {"column": "x", "mostly": 0.025}
    assert validate_frame(frame, suite).success
    result = validate_frame(frame.assign(x=np.nan), suite)
    assert not result.success
    assert "column 'x' has 20 nulls (100%)" in result.message


def test_a_column_of_mixed_value_types_is_refused() -> None:
    frame = pd.DataFrame({"code": [1, "a", 2, "b"], "y": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match=r"column 'code' mixes value types, e\.g\. 1 \(int\) and 'a' \(str\)"):
        profile_suite(frame, "mixed")


def test_long_text_gets_no_value_set_so_the_suite_stays_small() -> None:
    frame = pd.DataFrame({"note": ["short", "x" * 10_000_000, "short"], "plan": ["a", "b", "a"]})
    suite = profile_suite(frame, "text")
    assert len(json.dumps(suite)) < 5_000
    assert kwargs_of(suite, "expect_column_values_to_be_in_set", "plan") == {"column": "plan", "value_set": ["a", "b"]}
    assert ("expect_column_values_to_be_in_set", "note") not in {
        (e["type"], e["kwargs"].get("column")) for e in suite["expectations"]
    }
    assert validate_frame(frame, suite).success


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"]), r"column name\(s\) \['a'\] appear more than once"),
        (pd.DataFrame({0: [1.0, np.inf]}), r"column '0' holds 1 infinite value\(s\)"),
    ],
)
def test_column_names_repeated_or_not_strings(frame: pd.DataFrame, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        profile_suite(frame, "names")
