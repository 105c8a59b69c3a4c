"""The storage area's bad-input corpus (``bad_inputs/storage/cases.json``), fed where a user feeds it: the
dataset readers and writers, the ``ObjectStore`` behind every task, and the ``mlops_s3`` hook, against a real
moto server where S3 is involved. Each fails with its error and message, and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore, StorageConfig
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from tests.fixtures.s3_server import S3Server, free_port

CORPUS = Path(__file__).parent / "bad_inputs" / "storage"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text())
ERRORS: dict[str, type[BaseException]] = {
    error.__name__: error for error in (PermissionError, ValueError, ConnectionError, FileNotFoundError)
}
FRAME = pd.DataFrame({"a": [1, 2, 3]})


def _without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


Feed = Callable[[], object]


def _feed(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Server, bucket: str) -> Feed:
    """How the case is fed; ``bucket`` is an empty bucket on ``s3``."""
    moto = ObjectStore(s3.config)
    root = tmp_path / "root"
    if case == "s3_without_credentials":
        _without_credentials(monkeypatch, tmp_path)
        return lambda: read_dataset(f"{bucket}/data.parquet", ObjectStore(StorageConfig(s3.endpoint_url)))
    if case == "endpoint_without_scheme":
        conn = {"conn_type": "mlops_s3", "login": "key", "password": "secret", "extra": {"endpoint_url": "minio:9000"}}
        monkeypatch.setenv("AIRFLOW_CONN_BAD_S3", json.dumps(conn))
        return lambda: ObjectStorageHook("bad_s3").get_conn()
    if case == "endpoint_nothing_listens":
        closed = StorageConfig(f"http://127.0.0.1:{free_port()}", "key", "secret", "us-east-1")
        return lambda: read_dataset("s3://b/k.parquet", ObjectStore(closed))
    if case == "read_outside_roots":
        monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", str(root))
        monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_ROOTS", f"{root}/features")
        return lambda: ObjectStorageHook(None).get_conn().read_bytes(str(CORPUS / "corrupt.parquet"))
    if case == "write_escaping_roots":
        confined = ObjectStore(StorageConfig(roots=(str(root),)))
        return lambda: write_dataset(FRAME, f"{root}/../escape.parquet", confined)
    if case == "s3_outside_roots":
        return lambda: ObjectStore(StorageConfig(roots=("s3://ml-data/models",))).list("s3://ml-data/modelsX/")
    reads = {
        "missing_local_object": (str(CORPUS / "missing.parquet"), None),
        "missing_s3_object": (f"{bucket}/missing.parquet", moto),
        "missing_bucket": ("s3://no-such-bucket-mlops/x.parquet", moto),
        "s3_uri_without_bucket": ("s3:///x.parquet", None),
        "unsupported_scheme": ("gs://bucket/x.parquet", None),
        "unsupported_format": (str(CORPUS / "data.json"), None),
        "corrupt_parquet": (str(CORPUS / "corrupt.parquet"), None),
    }
    uri, store = reads[case]
    return lambda: read_dataset(uri, store)


def test_every_case_is_fed_and_its_input_exists() -> None:
    assert len(CASES) >= 8
    assert all((CORPUS / case["input"]).is_file() for case in CASES if case["input"])


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_bad_storage_input_fails_clearly_and_writes_nothing(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, s3_bucket: str
) -> None:
    before = sorted(p.name for p in CORPUS.iterdir())
    feed = _feed(case["case"], tmp_path, monkeypatch, s3_server, s3_bucket)
    with pytest.raises(ERRORS[case["error"]], match=case["match"]):
        feed()
    assert sorted(p.name for p in CORPUS.iterdir()) == before
    assert not (tmp_path / "escape.parquet").exists() and not (tmp_path / "root").exists()
    assert ObjectStore(s3_server.config).list(f"{s3_bucket}/") == []
