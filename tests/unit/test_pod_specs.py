"""The training pods of the example DAGs are valid Pods for every Kubernetes version we document, checked
strictly (no unknown field) and offline against the Kubernetes OpenAPI schemas that kubernetes-validate
bundles, and carry what a GPU training pod needs.

Each pod is rendered as the worker renders it (``build_pod_request_obj(dry_run=True)``, serialized by the
kubernetes ``ApiClient``), with the DAG's templated values replaced by values of their rendered type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from airflow.dag_processing.dagbag import BundleDagBag
from kubernetes.client import ApiClient

from airflow_mlops_provider.operators.training import GPUTrainingOperator
from tests.paths import DAGS

#: The Kubernetes versions the README's "Train on a GPU cluster" section documents.
KUBERNETES_VERSIONS = ("1.32", "1.33", "1.34", "1.35", "1.36")
IMAGE, NAMESPACE = "registry.example/ml/trainer:0.2.0", "ml-training"
SECRETS = ("tok-SECRET-123", "AKIA-SECRET-ID", "very-SECRET-key")


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[mlops]`` settings and connections (with secrets) as a worker of a GPU cluster has them."""
    token, key_id, secret = SECRETS
    monkeypatch.setenv("AIRFLOW__MLOPS__TRAINING_BACKEND", "kubernetes")
    monkeypatch.setenv("AIRFLOW__MLOPS__TRAINER_IMAGE", IMAGE)
    monkeypatch.setenv("AIRFLOW__MLOPS__NAMESPACE", NAMESPACE)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT",
        json.dumps({"conn_type": "mlflow", "host": "http://mlflow:5000", "extra": {"token": token}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_S3_DEFAULT",
        json.dumps({"conn_type": "mlops_s3", "login": key_id, "password": secret,
                    "extra": {"endpoint_url": "http://minio:9000"}}),
    )  # fmt: skip


def _dag_training_tasks() -> list[GPUTrainingOperator]:
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    assert not bag.import_errors
    return [t for dag in bag.dags.values() for t in dag.tasks if isinstance(t, GPUTrainingOperator)]


def _render(task: GPUTrainingOperator) -> dict[str, Any]:
    """The pod the worker would create for ``task``, as the JSON sent to the API server."""
    task.dataset_uri = "s3://ml-data/training_sets/churn.parquet"  # an XCom in the DAG
    task.hyperparameters = {key: "1" for key in task.hyperparameters}  # Jinja in the DAG
    task.prepare_pod("0123456789abcdef")
    pod: dict[str, Any] = ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))
    return pod


def _validate(pod: dict[str, Any]) -> None:
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(pod, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"invalid Pod for Kubernetes {version} at {list(err.path)}: {err.message}")


def test_every_dag_training_pod_is_a_strictly_valid_gpu_pod(deployment: None) -> None:
    tasks = _dag_training_tasks()
    assert tasks, "no GPUTrainingOperator in dags/"
    for task in tasks:
        pod = _render(task)
        _validate(pod)
        spec, (container,) = pod["spec"], pod["spec"]["containers"]
        assert pod["metadata"]["namespace"] == NAMESPACE and container["image"] == IMAGE
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(task.gpus)
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec.get("nodeSelector") == task.pod_operator().node_selector == {}  # the DAGs pick no GPU type
        shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory"
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert spec["restartPolicy"] == "Never" and len(spec["containers"]) == 1  # no XCom sidecar
        env = {e["name"]: e for e in container["env"]}
        for key in ("MLFLOW_TRACKING_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert set(env[key]) == {"name", "valueFrom"}
            assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "mlops-trainer", "key": key}}
        assert all("value" in e or "secretKeyRef" in e["valueFrom"] for e in env.values())
        serialized = json.dumps(pod)
        assert not any(secret in serialized for secret in SECRETS)


def test_gpu_type_priority_class_and_pod_template_are_valid_and_reach_the_pod(deployment: None, tmp_path: Path) -> None:
    template = tmp_path / "pod_template.yaml"
    template.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-template\n"
        "spec:\n  serviceAccountName: trainer\n  imagePullSecrets:\n  - name: registry\n"
        "  containers:\n  - name: base\n"
    )
    task = GPUTrainingOperator(
        task_id="train", dataset_uri="x", target="y", gpus=2, gpu_type="NVIDIA-H100-80GB-HBM3",
        priority_class_name="training", pod_template_file=str(template), node_selector={"pool": "gpu"},
    )  # fmt: skip
    pod = _render(task)
    _validate(pod)
    spec, (container,) = pod["spec"], pod["spec"]["containers"]
    assert spec["nodeSelector"] == {"pool": "gpu", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert spec["priorityClassName"] == "training"
    assert spec["serviceAccountName"] == "trainer" and spec["imagePullSecrets"] == [{"name": "registry"}]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2" and container["image"] == IMAGE


def test_an_invalid_pod_is_caught() -> None:
    """The check can fail: a misspelt field is refused in strict mode."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "base", "image": "i", "resource": {}}]}}  # fmt: skip
    with pytest.raises(kubernetes_validate.ValidationError, match="'resource' was unexpected"):
        kubernetes_validate.validate(pod, KUBERNETES_VERSIONS[0], strict=True)
