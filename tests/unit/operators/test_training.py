"""GPUTrainingOperator builds a GPU pod whose secrets are references, never values.

No Kubernetes API server exists here: the pod is built with ``dry_run=True``, the narrowest boundary.
"""

from __future__ import annotations

import json

import pytest
from kubernetes.client import ApiClient

from airflow_mlops_provider.config import training_backend
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from airflow_mlops_provider.operators.training import GPUTrainingOperator

SECRETS = ("tok-SECRET-123", "AKIA-SECRET-ID", "very-SECRET-key")


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> None:
    token, key_id, secret = SECRETS
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT",
        json.dumps({"conn_type": "mlflow", "host": "http://mlflow:5000", "extra": {"token": token}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_S3_DEFAULT",
        json.dumps(
            {
                "conn_type": "mlops_s3",
                "login": key_id,
                "password": secret,
                "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
            }
        ),
    )


def _operator(**kwargs: object) -> GPUTrainingOperator:
    return GPUTrainingOperator(
        task_id="train",
        dataset_uri="s3://data/train.parquet",
        target="churned",
        numeric_features=["a", "b"],
        categorical_features=["c"],
        hyperparameters={"epochs": 3, "learning_rate": 0.01, "hidden_sizes": [64, 32]},
        namespace="ml",
        storage_conn_id="mlops_s3_default",
        node_selector={"gpu": "a100"},
        **kwargs,  # type: ignore[arg-type]
    )


def _pod(op: GPUTrainingOperator) -> dict:  # type: ignore[type-arg]
    op.prepare_pod("run-42", MlflowHook(), ObjectStorageHook("mlops_s3_default"))
    pod: dict = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))  # type: ignore[type-arg]
    return pod


def test_pod_requests_gpus_tolerations_node_selector_and_shm(connections: None) -> None:
    pod = _pod(_operator(gpus=2))
    spec, (container,) = pod["spec"], pod["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"]["cpu"] == "4"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"gpu": "a100"}
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert pod["metadata"]["namespace"] == "ml"


def test_cpu_pod_has_no_gpu_limit_or_toleration(connections: None) -> None:
    pod = _pod(_operator(gpus=0))
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]
    assert not pod["spec"].get("tolerations")


def test_result_is_pushed_as_the_return_value_and_per_key(connections: None) -> None:
    op = _operator()
    assert op.do_xcom_push and op.multiple_outputs


def test_trainer_command_and_arguments(connections: None) -> None:
    container = _pod(_operator())["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "airflow_mlops_provider.training"]
    args = container["args"]
    assert args[args.index("--data-uri") + 1] == "s3://data/train.parquet"
    assert args[args.index("--numeric-features") + 1] == "a,b"
    assert args[args.index("--hidden-sizes") + 1] == "64,32"
    assert args[args.index("--learning-rate") + 1] == "0.01"


def test_secrets_are_secret_key_refs_never_values(connections: None) -> None:
    pod = _pod(_operator(secret_name="trainer-creds"))
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_RUN_ID"]["value"] == "run-42"
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    for key in ("MLFLOW_TRACKING_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "trainer-creds", "key": key}
    serialized = json.dumps(pod)
    for secret in SECRETS:
        assert secret not in serialized


def test_backend_comes_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__TRAINING_BACKEND", "kubernetes")
    assert training_backend() == "kubernetes"
    assert training_backend("local") == "local"
    monkeypatch.setenv("AIRFLOW__MLOPS__TRAINING_BACKEND", "slurm")
    with pytest.raises(ValueError, match="Unknown training backend 'slurm'"):
        training_backend()


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="task must be"):
        GPUTrainingOperator(task_id="t", dataset_uri="x", target="y", task="multiclass", namespace="ml")
