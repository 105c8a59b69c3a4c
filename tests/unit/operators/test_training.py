"""GPUTrainingOperator builds a GPU pod whose secrets are references, never values.

No Kubernetes API server exists here: the pod is built with ``dry_run=True``, the narrowest boundary.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
from kubernetes.client import ApiClient

from airflow_mlops_provider.config import training_backend
from airflow_mlops_provider.core.io.splits import SplitError, SplitPolicy
from airflow_mlops_provider.operators.training import POD_ARGUMENTS, GPUTrainingOperator
from airflow_mlops_provider.training.options import parse_config

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
    op.prepare_pod("run-42")
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


def test_hooks_come_from_the_connection_ids_and_are_built_once(connections: None) -> None:
    op = _operator(mlflow_conn_id="mlflow_default")
    assert op.mlflow_hook is op.mlflow_hook and op.storage_hook is op.storage_hook
    assert (op.mlflow_hook.mlflow_conn_id, op.storage_hook.storage_conn_id) == ("mlflow_default", "mlops_s3_default")
    assert GPUTrainingOperator(task_id="t", dataset_uri="x", target="y", namespace="ml").storage_conn_id == (
        "mlops_s3_default"
    )


def test_trainer_command_and_arguments(connections: None) -> None:
    container = _pod(_operator())["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "airflow_mlops_provider.training"]
    args = container["args"]
    assert args[args.index("--data-uri") + 1] == "s3://data/train.parquet"
    assert args[args.index("--numeric-features") + 1] == "a,b"
    assert args[args.index("--hidden-sizes") + 1] == "64,32"
    assert args[args.index("--learning-rate") + 1] == "0.01"
    assert args[args.index("--problem-type") + 1] == "binary"


def test_the_trainer_accepts_the_operators_arguments() -> None:
    config = parse_config(_operator(problem_type="regression").trainer_arguments(), {})
    assert (config.data_uri, config.target, config.problem_type) == ("s3://data/train.parquet", "churned", "regression")
    assert (config.numeric_features, config.categorical_features) == (("a", "b"), ("c",))
    assert (config.epochs, config.learning_rate, config.hidden_sizes) == (3, 0.01, (64, 32))


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


def test_unknown_problem_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"problem_type must be one of .* not 'multiclass'"):
        GPUTrainingOperator(task_id="t", dataset_uri="x", target="y", problem_type="multiclass", namespace="ml")


def test_split_defaults_to_the_split_column_policy() -> None:
    op = _operator()
    assert (op.split, op.split_column) == (SplitPolicy.existing(), "split")
    args = op.trainer_arguments()
    assert "--split-policy" not in args  # the trainer's default, so trainer images that predate policies run
    assert parse_config(args, {}).split == SplitPolicy.existing()
    assert _operator(split_column="fold").split == SplitPolicy.existing("fold")


@pytest.mark.parametrize(
    "split",
    [SplitPolicy.random_by(seed=0, stratify=True), SplitPolicy.temporal_by("event_time", 0.1, 0.2, column="fold")],
)
def test_split_policy_reaches_the_trainer(split: SplitPolicy) -> None:
    op = _operator(split=split)
    args = op.trainer_arguments()
    assert args[args.index("--split-policy") + 1] == split.to_json()
    config = parse_config(args, {})
    assert (config.split, config.split_column) == (split, split.column)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"split": {"kind": "random"}}, TypeError, r"split must be a SplitPolicy \(e.g. .*\), not dict"),
        (
            {"split": SplitPolicy.random_by(), "split_column": "fold"},
            ValueError,
            "split_column 'fold' differs from the split policy's column 'split'",
        ),
        ({"split": SplitPolicy.random_by(column="a")}, ValueError, "column 'a' is the target or a feature"),
        ({"split": SplitPolicy.random_by(column="churned")}, ValueError, "column 'churned' is the target"),
        (
            {"split": SplitPolicy.random_by(stratify=True), "problem_type": "regression"},
            ValueError,
            "a stratified split needs problem_type 'binary', not 'regression'",
        ),
    ],
)
def test_bad_split_is_refused_at_parse_time(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        _operator(**kwargs)


def test_a_bad_policy_fails_when_built_in_the_dag_file() -> None:
    with pytest.raises(SplitError, match="with a sum < 1"):
        _operator(split=SplitPolicy.random_by(validation=0.5, holdout=0.5))


@pytest.mark.parametrize("gpus", [-1, 1.5, True, "2", "many", None])
def test_gpus_must_be_a_non_negative_int(gpus: object) -> None:
    with pytest.raises(ValueError, match=rf"gpus must be a non-negative integer \(0 for a CPU pod\), not {gpus!r}"):
        _operator(gpus=gpus)


def test_templated_gpus_are_checked_once_rendered(connections: None) -> None:
    op = _operator(gpus="{{ params.gpus }}")
    limits = op.pod_operator().container_resources.limits
    assert limits["nvidia.com/gpu"] == "{{ params.gpus }}"
    limits["nvidia.com/gpu"] = "2"  # as rendered
    op._check_rendered_gpus(op.pod_operator())
    limits["nvidia.com/gpu"] = "two"
    with pytest.raises(ValueError, match="not 'two'"):
        op._check_rendered_gpus(op.pod_operator())


def test_pod_arguments_are_kubernetes_pod_operators_own() -> None:
    """The list that checks the pass-through arguments at parse time is KubernetesPodOperator's signature,
    less what the operator sets itself: a provider upgrade that changes it fails here."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    signature = set(inspect.signature(KubernetesPodOperator.__init__).parameters) - {"self", "kwargs"}
    assert signature - {"image", "namespace", "cmds", "arguments", "do_xcom_push"} == POD_ARGUMENTS


def test_a_misspelt_argument_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(TypeError, match=r"unexpected arguments \['node_selecter'\]"):
        _operator(node_selecter={"gpu": "a100"})
    with pytest.raises(TypeError, match=r"unexpected arguments \['cmds'\]"):
        _operator(cmds=["bash"])


def test_base_operator_arguments_stay_with_the_task_and_the_others_go_to_the_pod(connections: None) -> None:
    op = _operator(retries=3, pool="gpu", deferrable=True, labels={"team": "ml"})
    assert (op.retries, op.pool) == (3, "gpu")
    assert op.pod_options == {"node_selector": {"gpu": "a100"}, "deferrable": True, "labels": {"team": "ml"}}
    pod = op.pod_operator()
    assert (pod.task_id, pod.deferrable, pod.labels, pod.do_xcom_push) == ("train", True, {"team": "ml"}, False)


def test_parsing_a_training_task_imports_no_kubernetes_client() -> None:
    """A DAG file's parse never pays the Kubernetes clients (seconds); the pod module does, when it runs."""
    code = (
        "import sys\n"
        "from airflow_mlops_provider.operators.training import POD_ARGUMENTS, GPUTrainingOperator\n"
        "GPUTrainingOperator(task_id='t', dataset_uri='d', target='y', gpus=2, gpu_type='A100', cpu='500m')\n"
        "print(sorted(m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes')))\n"
        "import airflow_mlops_provider.operators.training_pod\n"
        "print('kubernetes' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "True"]


def test_gpu_type_selects_nodes_by_the_gpu_product_label(connections: None) -> None:
    pod = _pod(_operator(gpu_type="NVIDIA-A100-SXM4-80GB"))
    assert pod["spec"]["nodeSelector"] == {"gpu": "a100", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    gke = _pod(_operator(gpu_type="nvidia-l4", gpu_product_label="cloud.google.com/gke-accelerator"))
    assert gke["spec"]["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    with pytest.raises(ValueError, match="node_selector sets 'gpu' to another GPU type than 'h100'"):
        _operator(gpu_type="h100", gpu_product_label="gpu")


def test_priority_class_reaches_the_pod(connections: None) -> None:
    assert _pod(_operator(priority_class_name="batch-low"))["spec"]["priorityClassName"] == "batch-low"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hyperparameters": {"data_uri": "s3://other.parquet"}}, r"must not set \['data_uri'\]"),
        ({"hyperparameters": {"target": "x", "split_policy": "{}"}}, r"must not set \['split_policy', 'target'\]"),
        ({"hyperparameters": {"learning_rate": "fast"}}, r"argument --learning-rate: invalid float value: 'fast'"),
        ({"hyperparameters": {"batch_size": 0}}, r"batch-size must be >= 1, got 0"),
        ({"hyperparameters": ["epochs", 3]}, r"hyperparameters must be a dict"),
        ({"cpu": "0"}, r"cpu must be a positive Kubernetes quantity"),
        ({"shm_size": "lots"}, r"shm_size must be a positive Kubernetes quantity .* not 'lots'"),
    ],
)
def test_bad_literal_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GPUTrainingOperator(
            task_id="t", dataset_uri="d.parquet", target="y", numeric_features=["a"], namespace="ml", **kwargs
        )  # type: ignore[arg-type]


def test_templated_hyperparameters_are_checked_once_rendered_before_any_run(connections: None) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    op = GPUTrainingOperator(
        task_id="t", dataset_uri="d.parquet", target="y", numeric_features=["a"], namespace="ml",
        hyperparameters={"epochs": "{{ params.epochs }}"}, backend="kubernetes",
    )  # fmt: skip
    op.hyperparameters = {"epochs": "2.5"}  # as rendered
    with pytest.raises(AirflowFailException, match=r"argument --epochs: invalid int value: '2.5'"):
        op.execute({})  # type: ignore[arg-type]  # fails before it needs a context, a run or a pod
