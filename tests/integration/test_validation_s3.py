"""Quarantine and the validation gate against a real S3-compatible server (moto), and on local disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.validation.quarantine import RESULT_SUFFIX, quarantine_batch, quarantined_result
from airflow_mlops_provider.links.validation import ValidationDocsLink
from airflow_mlops_provider.operators.validation import DataValidationOperator
from demo import data as demo_data
from tests.fixtures.s3_server import S3Server, set_storage_connection
from tests.paths import DAGS

pytestmark = pytest.mark.integration

RAW_SUITE = str(DAGS / "expectations" / "churn_raw_batch.json")
CONN_ID = "mlops_s3_validation"


def test_quarantine_moves_the_batch_and_writes_its_result_beside_it(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    bad, good = f"{root}/landing/b1.csv", f"{root}/landing/b2.csv"
    store.write_bytes(bad, b"a,b\n1,2\n")
    store.write_bytes(good, b"a,b\n3,4\n")
    result = {"success": False, "message": "column 'c' is missing"}

    target = quarantine_batch(bad, f"{root}/quarantine/", result, store)

    assert target == f"{root}/quarantine/b1.csv"
    assert store.read_bytes(target) == b"a,b\n1,2\n"
    assert json.loads(store.read_bytes(target + RESULT_SUFFIX)) == result
    assert store.list(f"{root}/landing/") == [good]
    assert quarantined_result(bad, f"{root}/quarantine", store) == result
    assert quarantined_result(good, f"{root}/quarantine", store) is None


def test_gate_on_s3_stores_docs_links_them_and_quarantines(
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    task_context: Callable[..., dict[str, Any]],
) -> None:
    config = s3_server.config
    set_storage_connection(monkeypatch, CONN_ID, config)
    store = ObjectStore(config)
    batch = demo_data.generate_batch(300, "2024-06-01", seed=8)
    bad_uri = f"{s3_bucket}/landing/2024-06-02.parquet"
    write_dataset(batch.assign(region="atlantis"), bad_uri, store)
    good_uri = f"{s3_bucket}/landing/2024-06-01.parquet"
    write_dataset(batch, good_uri, store)

    def gate(uri: str) -> DataValidationOperator:
        return DataValidationOperator(
            task_id="validate",
            dataset=uri,
            suite_path=RAW_SUITE,
            on_failure="quarantine",
            quarantine_uri=f"{s3_bucket}/quarantine",
            docs_uri=f"{s3_bucket}/docs/{uri.rsplit('/', 1)[-1]}.html",
            storage_conn_id=CONN_ID,
        )

    context = task_context("validate")
    with pytest.raises(AirflowSkipException, match="column 'region' has 300 values"):
        gate(bad_uri).execute(context)  # type: ignore[arg-type]
    bucket = s3_bucket.removeprefix("s3://")
    assert context["ti"].xcom[ValidationDocsLink().xcom_key] == (
        f"{config.endpoint_url}/{bucket}/docs/2024-06-02.parquet.html"
    )
    assert b"atlantis" in store.read_bytes(f"{s3_bucket}/docs/2024-06-02.parquet.html")
    assert store.list(f"{s3_bucket}/landing/") == [good_uri]
    assert store.exists(f"{s3_bucket}/quarantine/2024-06-02.parquet")
    assert quarantined_result(bad_uri, f"{s3_bucket}/quarantine", store)["success"] is False  # type: ignore[index]

    result = gate(good_uri).execute(task_context("validate"))  # type: ignore[arg-type]
    assert result["success"] is True
    assert read_dataset(good_uri, store).equals(batch)
