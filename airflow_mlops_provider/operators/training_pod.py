"""The ``kubernetes`` backend of ``GPUTrainingOperator``: the trainer's pod, run by KubernetesPodOperator.

``operators.training`` imports this module only when a task trains on Kubernetes (or builds its pod), never
when a DAG file is parsed: the Kubernetes clients take seconds to import, and every DAG file parse would pay
them. The pod operator is built from the training task's arguments when the task runs, rendered with the
task's template environment, and runs inside the task's ``execute``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils.pod_manager import PodPhase
from airflow.sdk.bases.operator import ExecutorSafeguard
from airflow.sdk.exceptions import AirflowException
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from airflow_mlops_provider.training.local_process import TRAINER_MODULE
from airflow_mlops_provider.training.options import RUN_ID_ENV

if TYPE_CHECKING:
    from airflow.sdk import Context

GPU_TOLERATION = k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


def pod_operator(
    task_id: str,
    *,
    image: str | None,
    namespace: str | None,
    gpus: int | str,
    gpu_resource: str,
    cpu: str,
    memory: str,
    shm_size: str,
    options: Mapping[str, Any],
) -> KubernetesPodOperator:
    """The KubernetesPodOperator that runs the trainer: the GPUs and a toleration for them, the requests,
    a memory-backed ``/dev/shm``, the trainer's command, and no XCom sidecar (the trainer reports through
    MLflow); ``options`` (KubernetesPodOperator's own arguments) may override the defaults.

    :param task_id: the training task's id (the pod is named and labelled after it).
    :param image: the trainer image.
    :param namespace: the pod's namespace.
    :param gpus: the count of ``gpu_resource`` to request and limit, or a template rendering to one.
    :param gpu_resource: the extended resource name of the GPUs.
    :param cpu: CPU request.
    :param memory: memory request and limit.
    :param shm_size: the size of ``/dev/shm``.
    :param options: KubernetesPodOperator's arguments given to ``GPUTrainingOperator``.
    """
    kwargs = dict(options)
    if gpus:
        kwargs.setdefault("tolerations", [GPU_TOLERATION])
    limits = {"memory": memory, **({gpu_resource: str(gpus)} if gpus else {})}
    kwargs.setdefault(
        "container_resources", k8s.V1ResourceRequirements(requests={"cpu": cpu, "memory": memory}, limits=limits)
    )
    shm = k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=shm_size))
    kwargs["volumes"] = [*(kwargs.get("volumes") or []), shm]
    kwargs["volume_mounts"] = [
        *(kwargs.get("volume_mounts") or []),
        k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
    ]
    # A failed trainer's last log lines become the pod's termination message, hence the task's error.
    kwargs.setdefault("termination_message_policy", "FallbackToLogsOnError")
    return KubernetesPodOperator(
        task_id=task_id,
        image=image,
        namespace=namespace,
        cmds=["python", "-m", TRAINER_MODULE],
        do_xcom_push=False,
        **kwargs,
    )


def rendered_gpus(pod: KubernetesPodOperator, gpu_resource: str) -> object:
    """The GPU limit of a rendered pod operator (``0`` without one).

    :param pod: the pod operator.
    :param gpu_resource: the extended resource name of the GPUs.
    """
    limits = pod.container_resources.limits if pod.container_resources else None
    return (limits or {}).get(gpu_resource, 0)


def pod_env(env: Mapping[str, str], secret_keys: set[str], secret_name: str) -> list[k8s.V1EnvVar]:
    """The pod's env: plain values, and a ``secretKeyRef`` into ``secret_name`` for every secret key.

    :param env: the trainer's env, secrets included.
    :param secret_keys: the keys whose values are secrets (never put in the pod spec).
    :param secret_name: the Kubernetes Secret holding them.
    """
    out = []
    for name in sorted(env):
        if name in secret_keys:
            ref = k8s.V1SecretKeySelector(name=secret_name, key=name)
            out.append(k8s.V1EnvVar(name=name, value_from=k8s.V1EnvVarSource(secret_key_ref=ref)))
        else:
            out.append(k8s.V1EnvVar(name=name, value=env[name]))
    return out


def prepare(pod: KubernetesPodOperator, arguments: list[str], env: list[k8s.V1EnvVar]) -> None:
    """Set the trainer's arguments and env on the pod operator, after its fields are rendered.

    :param pod: the pod operator.
    :param arguments: the trainer's arguments.
    :param env: the trainer's env (from :func:`pod_env`), after the env the task was given.
    """
    pod.arguments = arguments
    given = pod.env_vars
    if isinstance(given, dict):
        given = [k8s.V1EnvVar(name=key, value=str(value)) for key, value in given.items()]
    pod.env_vars = [*(given or []), *env]


def execute(pod: KubernetesPodOperator, context: Context) -> None:
    """Run the pod operator's ``execute`` inside the training task's, as the task runner runs a task's
    (whose safeguard would otherwise log that an operator ran outside the task runner).

    :param pod: the pod operator.
    :param context: the training task's context.
    """
    scope = contextvars.copy_context()
    scope.run(ExecutorSafeguard.tracker.set, pod)
    scope.run(pod.execute, context)


def _namespace(pod: KubernetesPodOperator) -> str:
    """The namespace the pod goes to, resolved as KubernetesPodOperator resolves it."""
    return str(pod.namespace or pod.hook.get_namespace() or pod._incluster_namespace or "default")


def running_pod_run(pod: KubernetesPodOperator, context: Context) -> str | None:
    """The MLflow run of this task instance's pod if an earlier try left one that KubernetesPodOperator
    reattaches to (neither finished, failed nor evicted).

    :param pod: the pod operator.
    :param context: the training task's context.
    """
    if not pod.reattach_on_restart:
        return None
    found = pod.find_pod(_namespace(pod), context)
    if found is None or found.status is None:
        return None
    if found.status.phase in (PodPhase.SUCCEEDED, PodPhase.FAILED) or (found.status.reason or "") == "Evicted":
        return None
    env = {var.name: var.value for var in found.spec.containers[0].env or []}
    return env.get(RUN_ID_ENV)  # how a retry finds the run of the pod it reattaches to


def delete_finished_pod(pod: KubernetesPodOperator, context: Context) -> None:
    """Clean up after a worker that died once its pod had trained: its pod is left behind, unchecked.

    :param pod: the pod operator.
    :param context: the training task's context.
    """
    if pod.reattach_on_restart and (found := pod.find_pod(_namespace(pod), context)) is not None:
        pod.process_pod_deletion(found, reraise=False)


def unscheduled(pod: KubernetesPodOperator, err: BaseException) -> str | None:
    """When the pod of a failed task was never scheduled, why, in the scheduler's words (e.g.
    ``Insufficient nvidia.com/gpu``), from the pod's events (kept after the pod is deleted):
    KubernetesPodOperator only says that it took too long.

    :param pod: the pod operator.
    :param err: what the task failed with.
    """
    if not isinstance(err, AirflowException) or pod.pod is None:
        return None
    try:
        events = pod.pod_manager.read_pod_events(pod.pod).items
    except ApiException:
        return None
    reasons = [event.message for event in events if event.reason == "FailedScheduling"]
    if not reasons or any(event.reason == "Scheduled" for event in events):
        return None
    limits = pod.container_resources.limits if pod.container_resources else None
    wants = ", ".join(f"{key}: {value}" for key, value in sorted((limits or {}).items()))
    on_nodes = f" on nodes labelled {pod.node_selector}" if pod.node_selector else ""
    return (
        f"The training pod {pod.pod.metadata.namespace}/{pod.pod.metadata.name} was never scheduled "
        f"(waited {pod.schedule_timeout_seconds}s): {reasons[-1]} It asks for {wants}{on_nodes}."
    )
