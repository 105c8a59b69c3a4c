"""Fixtures of the stand-in-cluster tests: the cluster, and the connections a worker of a real deployment
has (Kubernetes, MLflow, S3), with the S3 keys in the trainer's Secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore
from demo import data as demo_data
from tests.fixtures.s3_server import S3Server, set_storage_connection
from tests.integration.kubernetes.cluster import FakeCluster
from tests.integration.kubernetes.training_task import NAMESPACE, SECRET, Supervisor


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> Supervisor:
    """The task runner's channel to its supervisor, keeping the XComs the task pushes."""
    from airflow.sdk.execution_time import task_runner

    channel = Supervisor()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", channel, raising=False)
    return channel


@pytest.fixture
def cluster(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlflow_connection: str,
    s3_server: S3Server,
    supervisor: Supervisor,
) -> Iterator[FakeCluster]:
    """A stand-in cluster with one node of one GPU; the worker's connections point at it, at the session's
    MLflow server and at its S3 server (keys in the trainer's Secret, never in the pod)."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    set_storage_connection(monkeypatch, "mlops_s3_default", s3_server.config)
    with FakeCluster.running(tmp_path / "cluster") as stand_in:
        monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", stand_in.kube_connection(NAMESPACE))
        config = s3_server.config
        keys = {"AWS_ACCESS_KEY_ID": config.access_key_id, "AWS_SECRET_ACCESS_KEY": config.secret_access_key}
        stand_in.create_secret(NAMESPACE, SECRET, keys)  # type: ignore[arg-type]
        yield stand_in


@pytest.fixture(scope="module")
def datasets(s3_server: S3Server) -> dict[str, str]:
    """A small training set on S3 (``clean``) and the same rows without a feature column (``bad``)."""
    store = ObjectStore(s3_server.config)
    store.client.create_bucket(Bucket="k8s-training")
    frame = demo_data.assign_splits(demo_data.generate_batch(1200, "2026-01-01", days=7, seed=5))
    uris = {"clean": "s3://k8s-training/clean.parquet", "bad": "s3://k8s-training/bad.parquet"}
    write_dataset(frame, uris["clean"], store)
    write_dataset(frame.drop(columns=["plan"]), uris["bad"], store)
    return uris
