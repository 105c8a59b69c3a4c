"""DataValidationOperator on local files: the gate's outcomes, Data Docs and its link, quarantine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import DAG
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider import _optional
from airflow_mlops_provider._optional import MissingExtraError
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.core.io.storage import StorageConfig
from airflow_mlops_provider.core.io.urls import object_url
from airflow_mlops_provider.core.validation.quarantine import RESULT_SUFFIX
from airflow_mlops_provider.links.validation import ValidationDocsLink
from airflow_mlops_provider.operators.validation import DataValidationOperator
from demo import data as demo_data
from tests.paths import DAGS

DAGS = DAGS
RAW_SUITE = str(DAGS / "expectations" / "churn_raw_batch.json")
LINK_KEY = ValidationDocsLink().xcom_key
RETURN_KEY = BaseXCom.XCOM_RETURN_KEY

Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def good_batch() -> pd.DataFrame:
    return demo_data.generate_batch(400, "2024-05-01", seed=5)


@pytest.fixture
def landing(tmp_path: Path, good_batch: pd.DataFrame) -> dict[str, str]:
    """A landing folder with one good and one bad batch."""
    bad = good_batch.assign(plan=good_batch["plan"].where(good_batch.index % 10 != 0, "gold"))
    bad.loc[:4, "monthly_charges"] = -1.0
    uris = {
        "good": str(tmp_path / "landing" / "2024-05-01.parquet"),
        "bad": str(tmp_path / "landing" / "2024-05-02.parquet"),
    }
    write_dataset(good_batch, uris["good"])
    write_dataset(bad, uris["bad"])
    return uris


def run(operator: DataValidationOperator, context: dict[str, Any]) -> dict[str, Any]:
    return operator.execute(context)  # type: ignore[arg-type]


def gate(tmp_path: Path, dataset: Any, **kwargs: Any) -> DataValidationOperator:
    return DataValidationOperator(
        task_id="validate", dataset=dataset, suite_path=RAW_SUITE, docs_uri=str(tmp_path / "docs" / "v.html"), **kwargs
    )


def test_a_good_batch_passes_with_docs_link_and_result(
    tmp_path: Path, landing: dict[str, str], task_context: Context
) -> None:
    context = task_context("validate")
    result = run(gate(tmp_path, landing["good"]), context)

    assert result["success"] is True
    assert result["suite_name"] == "churn_raw_batch"
    assert result["row_count"] == 400
    assert result["dataset_uri"] == landing["good"]
    docs = tmp_path / "docs" / "v.html"
    assert result["docs_uri"] == str(docs)
    assert "churn_raw_batch" in docs.read_text()
    ti = context["ti"]
    assert ti.xcom[LINK_KEY] == docs.as_uri() == result["docs_url"]
    assert set(ti.xcom) == {LINK_KEY}, "a returned result is pushed by Airflow, once, as the return value"


def test_a_failed_gate_fails_the_task_without_retry_and_says_what_failed(
    tmp_path: Path, landing: dict[str, str], task_context: Context
) -> None:
    context = task_context("validate")
    with pytest.raises(AirflowFailException) as raised:
        run(gate(tmp_path, landing["bad"]), context)

    message = str(raised.value)
    assert "column 'plan' has 40 values (10%) not in ['basic', 'premium', 'standard']; e.g. 'gold'" in message
    assert "column 'monthly_charges' has 5 values (1.25%) outside [0, 1000]; e.g. -1.0" in message
    assert f"Data Docs: {(tmp_path / 'docs' / 'v.html').as_uri()}" in message
    recorded = context["ti"].xcom[RETURN_KEY]
    assert recorded["success"] is False and len(recorded["failures"]) == 2
    assert recorded["message"] in message and recorded["dataset_uri"] == landing["bad"]
    assert context["ti"].xcom[LINK_KEY].endswith("/docs/v.html")
    assert Path(landing["bad"]).exists(), "a failed gate does not move the data"


def test_warn_returns_the_failed_result_for_branching(
    tmp_path: Path, landing: dict[str, str], task_context: Context
) -> None:
    context = task_context("validate")
    result = run(gate(tmp_path, landing["bad"], on_failure="warn"), context)
    assert result["success"] is False
    assert {f["column"] for f in result["failures"]} == {"plan", "monthly_charges"}
    assert RETURN_KEY not in context["ti"].xcom


def test_quarantine_moves_the_bad_batch_with_its_result_and_skips(
    tmp_path: Path, landing: dict[str, str], task_context: Context
) -> None:
    quarantine = tmp_path / "quarantine"
    context = task_context("validate")
    with pytest.raises(AirflowSkipException, match=r"Quarantined .*2024-05-02\.parquet"):
        run(gate(tmp_path, landing["bad"], on_failure="quarantine", quarantine_uri=str(quarantine)), context)

    assert not Path(landing["bad"]).exists()
    moved = quarantine / "2024-05-02.parquet"
    assert moved.read_bytes()[:4] == b"PAR1"
    beside = (quarantine / f"2024-05-02.parquet{RESULT_SUFFIX}").read_text()
    assert '"success": false' in beside and "'gold'" in beside
    assert Path(landing["good"]).exists()
    recorded = context["ti"].xcom[RETURN_KEY]
    assert recorded["success"] is False and recorded["dataset_uri"] == landing["bad"]

    rerun = task_context("validate", try_number=2)
    with pytest.raises(AirflowSkipException, match="already in quarantine"):
        run(gate(tmp_path, landing["bad"], on_failure="quarantine", quarantine_uri=str(quarantine)), rerun)
    assert rerun["ti"].xcom[RETURN_KEY] == recorded


def test_quarantine_leaves_a_good_batch_alone(tmp_path: Path, landing: dict[str, str], task_context: Context) -> None:
    before = Path(landing["good"]).read_bytes()
    operator = gate(tmp_path, landing["good"], on_failure="quarantine", quarantine_uri=str(tmp_path / "q"))
    assert run(operator, task_context("validate"))["success"] is True
    assert Path(landing["good"]).read_bytes() == before
    assert not (tmp_path / "q").exists()


def test_quarantine_defaults_under_the_data_dir(
    tmp_path: Path, landing: dict[str, str], task_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(AirflowSkipException):
        run(gate(tmp_path, landing["bad"], on_failure="quarantine"), task_context("validate"))
    assert (tmp_path / "data" / "quarantine" / "2024-05-02.parquet").is_file()


def test_training_set_xcom_and_suite_next_to_the_dag(
    tmp_path: Path, landing: dict[str, str], task_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", str(tmp_path / "data"))
    with DAG("ct_test", schedule=None) as dag:
        operator = DataValidationOperator(
            task_id="validate",
            dataset={"uri": landing["good"], "digest": "abc"},
            suite_path="expectations/churn_raw_batch.json",
        )
    dag.fileloc = str(DAGS / "continuous_training.py")
    context = task_context("validate", run_id="scheduled__2024-05-01T00:00:00+00:00")
    context["ti"].map_index = 3

    result = run(operator, context)
    expected = tmp_path / "data" / "validation" / "ct_test" / "scheduled__2024-05-01T00_00_00_00_00" / "validate.3.html"
    assert result["docs_uri"] == str(expected)
    assert expected.is_file()


@pytest.mark.parametrize(
    ("dataset", "suite", "error"),
    [
        ({"digest": "abc"}, RAW_SUITE, "dataset must be a URI or a dict with a 'uri'"),
        ("{tmp}/missing.parquet", RAW_SUITE, "no such object"),
        ("{good}", "{tmp}/missing.json", "no such object"),
        ("{good}", "{tmp}/empty.json", "has no expectations"),
    ],
)
def test_unusable_inputs_fail_without_retry(
    tmp_path: Path, landing: dict[str, str], task_context: Context, dataset: Any, suite: str, error: str
) -> None:
    (tmp_path / "empty.json").write_text('{"name": "empty", "expectations": []}')
    if isinstance(dataset, str):
        dataset = dataset.format(tmp=tmp_path, good=landing["good"])
    operator = DataValidationOperator(task_id="validate", dataset=dataset, suite_path=suite.format(tmp=tmp_path))
    with pytest.raises(AirflowFailException, match=error):
        run(operator, task_context("validate"))


def test_an_unknown_failure_mode_is_a_parse_time_error() -> None:
    with pytest.raises(ValueError, match="on_failure must be one of"):
        DataValidationOperator(task_id="validate", dataset="x.parquet", suite_path=RAW_SUITE, on_failure="ignore")


@pytest.mark.parametrize(
    ("uri", "config", "url"),
    [
        ("/data/docs/v.html", StorageConfig(), "file:///data/docs/v.html"),
        (
            "s3://ml/docs/run 1/v.html",
            StorageConfig(endpoint_url="http://user:pw@minio:9000"),
            "http://minio:9000/ml/docs/run%201/v.html",
        ),
        (
            "s3://ml/docs/v.html",
            StorageConfig(region_name="eu-west-1"),
            "https://s3.console.aws.amazon.com/s3/object/ml?region=eu-west-1&prefix=docs%2Fv.html",
        ),
    ],
)
def test_docs_urls_open_in_a_browser(uri: str, config: StorageConfig, url: str) -> None:
    assert object_url(uri, config) == url


def test_fails_fast_without_the_gx_extra(monkeypatch: pytest.MonkeyPatch, task_context: Context) -> None:
    monkeypatch.setitem(_optional.EXTRAS, "gx", ("great_expectations", "no_such_module_xyz"))
    operator = DataValidationOperator(task_id="validate", dataset="x.parquet", suite_path=RAW_SUITE)
    with pytest.raises(MissingExtraError, match=r"airflow-mlops-provider\[gx\]"):
        run(operator, task_context("validate"))


@pytest.fixture
def chunk(tmp_path: Path, landing: dict[str, str], good_batch: pd.DataFrame) -> list[str]:
    """Four batches: three good ones (one of them tiny) and the bad one, in landing order."""
    more = [str(tmp_path / "landing" / f"2024-05-0{day}.parquet") for day in (3, 4)]
    write_dataset(demo_data.generate_batch(300, "2024-05-03", seed=6), more[0])
    write_dataset(demo_data.generate_batch(1, "2024-05-04", seed=7), more[1])
    return [landing["good"], landing["bad"], *more]


def test_a_chunk_quarantines_each_bad_batch_alone_and_passes_the_others(
    tmp_path: Path, chunk: list[str], task_context: Context
) -> None:
    quarantine = tmp_path / "quarantine"
    context = task_context("validate")
    operator = gate(tmp_path, chunk, on_failure="quarantine", quarantine_uri=str(quarantine))
    result = run(operator, context)

    assert result["passed"] == [chunk[0], chunk[2], chunk[3]] and result["quarantined"] == [chunk[1]]
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert lineage is not None and [i.name for i in lineage.inputs] == chunk  # each batch with its own facets
    assessed = [i.inputFacets["dataQualityAssertions"].assertions for i in lineage.inputs]
    assert [all(a.success for a in batch) for batch in assessed] == [True, False, True, True]
    records = {record["dataset_uri"]: record for record in result["records"]}
    assert [records[uri]["row_count"] for uri in chunk] == [400, 400, 300, 1]
    bad = records[chunk[1]]
    assert bad["success"] is False and {f["column"] for f in bad["failures"]} == {"plan", "monthly_charges"}
    assert bad["docs_uri"] == str(tmp_path / "docs" / "v.2024-05-02.parquet.html")  # its own page
    assert "monthly_charges" in Path(bad["docs_uri"]).read_text()
    assert context["ti"].xcom[LINK_KEY] == bad["docs_url"], "the task links the quarantined batch's Data Docs"
    beside = json.loads((quarantine / f"2024-05-02.parquet{RESULT_SUFFIX}").read_text())
    assert beside == bad
    assert not Path(chunk[1]).exists() and all(Path(uri).exists() for uri in (chunk[0], chunk[2], chunk[3]))
    assert all(records[uri]["success"] and records[uri]["statistics"]["evaluated_expectations"] == 35 for uri in
               result["passed"])  # fmt: skip

    rerun = task_context("validate", try_number=2)  # a retry: the quarantined batch's recorded result again
    again = run(gate(tmp_path, chunk, on_failure="quarantine", quarantine_uri=str(quarantine)), rerun)
    assert (again["passed"], again["quarantined"]) == (result["passed"], result["quarantined"])
    assert {r["dataset_uri"]: r for r in again["records"]}[chunk[1]] == bad


def test_a_chunk_of_bad_or_unreadable_batches_is_quarantined_and_skipped(
    tmp_path: Path, chunk: list[str], task_context: Context
) -> None:
    garbage = tmp_path / "landing" / "2024-05-09.parquet"
    garbage.write_bytes(b"not parquet")
    empty = tmp_path / "landing" / "2024-05-10.parquet"
    demo_data.generate_batch(10, "2024-05-10", seed=1).iloc[:0].to_parquet(empty)  # fails the row count alone
    context = task_context("validate")
    with pytest.raises(AirflowSkipException, match=r"All 3 datasets quarantined") as raised:
        run(gate(tmp_path, [chunk[1], str(garbage), str(empty)], on_failure="quarantine",
                 quarantine_uri=str(tmp_path / "q")), context)  # fmt: skip
    assert f"Cannot read {garbage}" in str(raised.value)
    recorded = context["ti"].xcom[RETURN_KEY]
    assert recorded["passed"] == [] and len(recorded["quarantined"]) == 3
    empty_record = recorded["records"][2]
    assert empty_record["success"] is False and "row" in empty_record["message"].lower()
    assert sorted(p.name for p in (tmp_path / "q").iterdir() if not p.name.endswith(RESULT_SUFFIX)) == [
        "2024-05-02.parquet", "2024-05-09.parquet", "2024-05-10.parquet"
    ]  # fmt: skip


def test_a_failing_chunk_fails_the_task_naming_each_bad_batch(
    tmp_path: Path, chunk: list[str], task_context: Context
) -> None:
    context = task_context("validate")
    with pytest.raises(AirflowFailException, match=r"Data validation of 1 of 4 datasets failed") as raised:
        run(gate(tmp_path, chunk), context)
    assert f"{chunk[1]}: Suite 'churn_raw_batch' failed on 400 rows" in str(raised.value)
    assert all(Path(uri).exists() for uri in chunk), "a failed gate moves nothing"
    assert context["ti"].xcom[RETURN_KEY]["passed"] == [chunk[0], chunk[2], chunk[3]]
