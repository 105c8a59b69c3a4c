"""The validation area's bad-input corpus (tests/reliability/bad_inputs/validation/cases.json).

Each case goes through the surface a user hits, as its ``feed`` says: ``airflow-mlops suite init`` (exit 2,
one line on stderr, no suite file written), the reader and the suite loader the gate uses (their error),
or ``DataValidationOperator`` with ``on_failure="fail"`` (a failed gate: ``AirflowFailException`` whose
message names what failed and stays bounded; the batch is left where it was, nothing is quarantined).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider.cli import main
from airflow_mlops_provider.core.io.datasets import read_batch
from airflow_mlops_provider.core.validation.profiler import profile_suite
from airflow_mlops_provider.core.validation.suites import MAX_FAILURES, MAX_LINE_CHARS, load_suite
from airflow_mlops_provider.operators.validation import DataValidationOperator

CORPUS = Path(__file__).parent / "bad_inputs" / "validation"
CASES = json.loads((CORPUS / "cases.json").read_text())
CLI, READ, LOAD, PROFILE, OPERATOR = (
    "airflow-mlops",
    "core.io.datasets",
    "core.validation.suites",
    ("core.validation.profiler"),
    "DataValidationOperator",
)
#: A failed gate's message: its header, at most MAX_FAILURES lines and the "more" line, and the Data Docs link.
MESSAGE_BOUND = 1_000 + (MAX_FAILURES + 1) * (MAX_LINE_CHARS + 3)


def generated(case: str, folder: Path) -> Path | pd.DataFrame:
    """The input of a case that is made by the test rather than committed."""
    if case == "huge_string":  # a 10 MB value in an otherwise good batch
        frame = pd.read_csv(CORPUS / "good.csv")
        frame.loc[0, "plan"] = "x" * 10_000_000
        path = folder / "huge_string.csv"
        frame.to_csv(path, index=False)
        return path
    if case == "mixed_types":
        return pd.DataFrame({"code": [7, "seven", 8, "eight"], "n": [1, 2, 3, 4]})
    raise AssertionError(f"no generated input for {case}")


def test_the_corpus_covers_suite_init_and_validation() -> None:
    assert len(CASES) >= 10 and len({case["case"] for case in CASES}) == len(CASES)
    assert all(case["input"] is None or (CORPUS / case["input"]).is_file() for case in CASES)
    feeds = {case["feed"].split("(")[0].split(" ")[0].rsplit(".", 1)[0] for case in CASES}
    assert feeds == {CLI, READ, LOAD, PROFILE, OPERATOR}, feeds


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_bad_input_fails_clearly_and_writes_nothing(
    case: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    task_context: Callable[..., dict[str, Any]],
) -> None:
    given = shutil.copy(CORPUS / case["input"], tmp_path / case["input"]) if case["input"] else None
    source = Path(given) if given else generated(case["case"], tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    feed: str = case["feed"]

    if feed.startswith(CLI):
        suite = tmp_path / "suites" / "s.json"
        args = [str(source) if a == "<file>" else str(suite) if a == "<suite.json>" else a for a in shlex.split(feed)]
        assert main(args[1:]) == 2
        err = capsys.readouterr().err
        assert err.startswith("airflow-mlops: error: ") and err.count("\n") == 1, err
        assert re.search(case["match"], err), err
        assert case["error"] == "ValueError", "the command reports bad input (ValueError, OSError) on one line"
        assert not suite.parent.exists(), "nothing written"
    elif feed.startswith(OPERATOR):
        error, message = run_gate(source, tmp_path, task_context)
        assert type(error).__name__ == case["error"]
        assert re.search(case["match"], message), message
        assert len(message) <= MESSAGE_BOUND
    else:
        call: Callable[[], object]
        if feed.startswith(READ):
            call = lambda: read_batch(str(source))  # noqa: E731
        elif feed.startswith(LOAD):
            call = lambda: load_suite(Path(source).read_bytes())  # noqa: E731
        else:
            assert isinstance(source, pd.DataFrame)
            call = lambda: profile_suite(source, "reference")  # noqa: E731
        with pytest.raises(Exception) as raised:
            call()
        assert type(raised.value).__name__ == case["error"]
        assert re.search(case["match"], str(raised.value)), str(raised.value)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.match("docs/*.html")}
    assert after == before, "the input is left as it was, and nothing else is written (but the Data Docs)"


def run_gate(
    batch: Path | pd.DataFrame, folder: Path, task_context: Callable[..., dict[str, Any]]
) -> tuple[BaseException, str]:
    """Validate ``batch`` against the corpus suite as a failing gate; return its error and what it recorded."""
    assert isinstance(batch, Path)
    operator = DataValidationOperator(
        task_id="validate",
        dataset=str(batch),
        suite_path=str(CORPUS / "suite.json"),
        on_failure="fail",
        quarantine_uri=str(folder / "quarantine"),
        docs_uri=str(folder / "docs" / "v.html"),
    )
    context = task_context("validate")
    with pytest.raises(AirflowFailException) as raised:
        operator.execute(context)  # type: ignore[arg-type]
    record = context["ti"].xcom["return_value"]
    assert record["success"] is False and record["dataset_uri"] == str(batch)
    assert len(json.dumps(record, allow_nan=False)) <= 2 * MESSAGE_BOUND, "the recorded result is bounded too"
    return raised.value, str(raised.value)
