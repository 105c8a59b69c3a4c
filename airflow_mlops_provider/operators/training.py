"""GPU training: the bundled PyTorch trainer as a Kubernetes pod, or as a local process (embedded stack)."""

from __future__ import annotations

import inspect
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import LOCAL, option, training_backend
from airflow_mlops_provider.contracts import PROBLEM_TYPES, ProblemType, Split, Tag, TrainingResult
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.quantity import is_positive_quantity
from airflow_mlops_provider.failpoints import failpoint
from airflow_mlops_provider.hooks.connections import ConnectionsMixin
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from airflow_mlops_provider.links.mlflow import MlflowRunLink
from airflow_mlops_provider.openlineage_facets import OpenLineageMixin, training_lineage
from airflow_mlops_provider.training.errors import EXIT_BAD_INPUT, TrainerInputError
from airflow_mlops_provider.training.local_process import TRAINER_MODULE, LocalTrainer
from airflow_mlops_provider.training.options import (
    HYPERPARAMETERS,
    RUN_ID_ENV,
    check_hyperparameter_arguments,
    parse_config,
)

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context

#: The node label naming the GPU model, set by NVIDIA GPU Feature Discovery (the GPU operator).
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
#: The trigger event's key for the MLflow run, so that the resumed task reads back the run its pod trained.
_RUN_EVENT_KEY = "mlflow_run_id"


def check_gpus(gpus: object, *, rendered: bool = False) -> int:
    """``gpus`` as a GPU count.

    :param gpus: ``GPUTrainingOperator(gpus=...)``: an int.
    :param rendered: ``gpus`` is what a template rendered to: the decimal string of an int is one too.
    :raises ValueError: for anything else (a bool, a float, a negative number, other text).
    """
    if rendered and isinstance(gpus, str) and gpus.strip().isdecimal():
        return int(gpus)
    if isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= 0:
        return gpus
    raise ValueError(f"gpus must be a non-negative integer (0 for a CPU pod), not {gpus!r}")


def check_quantity(name: str, value: object) -> str:
    """``value`` as a positive Kubernetes quantity such as ``4``, ``500m`` or ``16Gi``.

    :param name: the operator argument, for the message.
    :param value: what it was given.
    :raises ValueError: not a quantity, or not above zero.
    """
    if not is_positive_quantity(value):
        raise ValueError(f"{name} must be a positive Kubernetes quantity such as '4', '500m' or '16Gi', not {value!r}")
    return str(value)


def check_hyperparameters(hyperparameters: object) -> dict[str, Any]:
    """``hyperparameters`` as a dict of trainer options, refusing keys the operator's own arguments set.

    :param hyperparameters: ``GPUTrainingOperator(hyperparameters=...)``, rendered.
    :raises ValueError: not a dict, or an unknown key or one such as ``data_uri`` or ``target``.
    """
    if not isinstance(hyperparameters, dict):
        raise ValueError(f"hyperparameters must be a dict such as {{'epochs': 10}}, not {hyperparameters!r}")
    owned = sorted(set(hyperparameters) & {f.replace("-", "_") for f in _OPERATOR_OPTIONS})
    if owned:
        raise ValueError(
            f"hyperparameters must not set {owned}: the operator's own arguments (dataset_uri, target, "
            "problem_type, numeric_features, categorical_features, split_column, split) do"
        )
    unknown = sorted(set(map(str, hyperparameters)) - set(HYPERPARAMETERS))
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; the trainer takes {list(HYPERPARAMETERS)}")
    return hyperparameters


#: The trainer options set from the operator's own arguments, never from ``hyperparameters``.
_OPERATOR_OPTIONS = (
    "data_uri",
    "target",
    "problem_type",
    "numeric_features",
    "categorical_features",
    "split_column",
    "split_policy",
)
#: BaseOperator's own arguments; the operator's other keyword arguments are KubernetesPodOperator's.
_BASE_ARGUMENTS = frozenset(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}
#: KubernetesPodOperator's arguments that ``GPUTrainingOperator`` passes to the trainer's pod (its own
#: arguments set ``image``, ``namespace``, ``cmds``, ``arguments`` and ``do_xcom_push``). Listed here so that
#: a misspelt argument fails when the DAG file is parsed, without importing the Kubernetes clients.
POD_ARGUMENTS = frozenset({
    "kubernetes_conn_id", "name", "random_name_suffix", "ports", "volume_mounts", "volumes", "env_vars",
    "env_from", "secrets", "in_cluster", "cluster_context", "labels", "reattach_on_restart", "durable",
    "startup_timeout_seconds", "startup_check_interval_seconds", "schedule_timeout_seconds", "get_logs",
    "base_container_name", "base_container_status_polling_interval", "init_container_logs", "container_logs",
    "image_pull_policy", "annotations", "container_resources", "affinity", "config_file", "runtime_class_name",
    "node_selector", "image_pull_secrets", "service_account_name", "automount_service_account_token",
    "hostnetwork", "host_aliases", "tolerations", "security_context", "container_security_context",
    "xcom_sidecar_container_security_context", "dnspolicy", "dns_config", "hostname", "subdomain",
    "schedulername", "full_pod_spec", "init_containers", "log_events_on_failure", "log_events_on_startup",
    "pod_template_file", "pod_template_dict", "priority_class_name", "pod_runtime_info_envs",
    "termination_grace_period", "configmaps", "skip_on_exit_code", "deferrable", "poll_interval",
    "log_pod_spec_on_failure", "on_finish_action", "on_kill_action", "is_delete_operator_pod",
    "termination_message_policy", "active_deadline_seconds", "callbacks", "progress_callback",
    "logging_interval", "trigger_kwargs", "container_name_log_prefix_enabled", "log_formatter",
})  # fmt: skip


def _is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def _has_template(value: object) -> bool:
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_template(v) for v in value)
    return _is_template(value)


class GPUTrainingOperator(OpenLineageMixin, ConnectionsMixin, BaseOperator):
    """Train a model with the bundled PyTorch trainer, tracked in MLflow.

    The operator creates the MLflow run first and hands its id to the trainer as ``MLFLOW_RUN_ID``, so it
    knows the run without a sidecar. On the ``kubernetes`` backend the trainer runs in a GPU pod; on the
    ``local`` backend (the embedded default) the same entrypoint runs with the same env in a fork of the task
    process (its libraries are imported already), or a new interpreter when a fork is unsafe.
    A retry after a finished training reuses that run instead of training again; on Kubernetes, a retry
    after the worker died reattaches to the pod still training and adopts its run. Returns a
    :class:`~airflow_mlops_provider.contracts.TrainingResult`: ``{mlflow_run_id, experiment_id,
    model_uri, metrics, dataset_uri, dataset_digest}``.

    The trainer splits the dataset with ``split`` and records the policy and the digest of the holdout
    rows on the run, so that ``PromoteModelOperator`` scores on exactly those rows.

    :param dataset_uri: the training set (parquet or CSV, local path or ``s3://``); with a split column
        unless ``split`` assigns one.
    :param target: the label column.
    :param numeric_features: numeric feature columns.
    :param categorical_features: categorical feature columns.
    :param problem_type: ``binary`` or ``regression``.
    :param split_column: the column holding ``train``/``validation``/``holdout`` (default ``split``); with
        ``split``, it must be the policy's column.
    :param split: how rows are assigned to train/validation/holdout, e.g.
        ``SplitPolicy.random_by(seed=0, stratify=True)`` or ``SplitPolicy.temporal_by("event_time")``;
        ``None``: the dataset's ``split_column`` (``SplitPolicy.existing``, the trainer's default). Another
        policy is passed as ``--split-policy``.
    :param hyperparameters: trainer options, e.g. ``{"epochs": 10, "learning_rate": 1e-3}`` (templated).
    :param experiment_name: the MLflow experiment (created when missing).
    :param run_tags: extra tags on the MLflow run, e.g. lineage such as ``Tag.FEATURE_SERVICE`` (templated).
    :param backend: ``local`` or ``kubernetes``; by default ``[mlops] training_backend``.
    :param gpus: the count of ``gpu_resource`` to request and limit: a non-negative int (0 for a CPU pod),
        or a template that renders to one (checked when the task runs).
    :param gpu_resource: the extended resource name of the GPUs.
    :param gpu_type: the GPU model to run on, e.g. ``NVIDIA-A100-SXM4-80GB``: a node selector on
        ``gpu_product_label``; ``None``: any node with the GPUs.
    :param gpu_product_label: the node label naming the GPU model (``cloud.google.com/gke-accelerator`` on
        GKE).
    :param shm_size: the size of the memory-backed ``/dev/shm`` (PyTorch data loaders need more than 64M).
    :param cpu: CPU request.
    :param memory: memory request and limit.
    :param mlflow_conn_id: the ``mlflow`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` datasets and artifacts (the default
        falls back to the environment when it does not exist); ``None``: the environment.
    :param secret_name: the Kubernetes Secret holding the secret env keys (MLflow token or password,
        S3 keys), referenced with ``secretKeyRef``; secret values are never put in the pod spec.
    :param image: the trainer image; by default ``[mlops] trainer_image``.
    :param namespace: the pods' namespace; by default ``[mlops] namespace``, else the connection's.
    :param kwargs: BaseOperator's arguments, and KubernetesPodOperator's (:data:`POD_ARGUMENTS`), passed to
        the pod, e.g. ``node_selector``, ``affinity``, ``priority_class_name``, ``pod_template_file`` (a base
        pod for what this operator does not set: service account, image pull secrets, ...),
        ``schedule_timeout_seconds``, ``deferrable``. The pod operator is built when the task runs on the
        ``kubernetes`` backend (the Kubernetes clients are never imported when the DAG file is parsed) and
        renders its own templated fields (``labels``, ``env_vars``, ``annotations``, ...) then.
    """

    template_fields: Sequence[str] = (
        "dataset_uri",
        "hyperparameters",
        "experiment_name",
        "backend",
        "run_tags",
    )
    operator_extra_links = (MlflowRunLink(),)

    def __init__(
        self,
        *,
        dataset_uri: str,
        target: str,
        numeric_features: Sequence[str] = (),
        categorical_features: Sequence[str] = (),
        problem_type: str = ProblemType.BINARY,
        split_column: str | None = None,
        split: SplitPolicy | None = None,
        hyperparameters: dict[str, Any] | None = None,
        experiment_name: str = "continuous-training",
        run_tags: dict[str, str] | None = None,
        backend: str | None = None,
        gpus: int | str = 1,
        gpu_resource: str = "nvidia.com/gpu",
        gpu_type: str | None = None,
        gpu_product_label: str = GPU_PRODUCT_LABEL,
        shm_size: str = "8Gi",
        cpu: str = "4",
        memory: str = "16Gi",
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
        secret_name: str = "mlops-trainer",
        image: str | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not _is_template(gpus):  # a template is checked once rendered, in execute()
            gpus = check_gpus(gpus)
        self.cpu, self.memory = check_quantity("cpu", cpu), check_quantity("memory", memory)
        self.shm_size = check_quantity("shm_size", shm_size)
        base = {key: kwargs.pop(key) for key in list(kwargs) if key in _BASE_ARGUMENTS}
        unknown = sorted(set(kwargs) - POD_ARGUMENTS)
        if unknown:
            raise TypeError(
                f"GPUTrainingOperator got unexpected arguments {unknown}: it takes BaseOperator's and "
                "KubernetesPodOperator's arguments (except image, namespace, cmds and arguments, which it sets)"
            )
        if gpu_type is not None:
            selector = kwargs["node_selector"] = dict(kwargs.get("node_selector") or {})
            if selector.setdefault(gpu_product_label, gpu_type) != gpu_type:
                raise ValueError(f"node_selector sets {gpu_product_label!r} to another GPU type than {gpu_type!r}")
        # The result goes to XCom as the task's return value, one key each (``train.output["model_uri"]``).
        base.setdefault("multiple_outputs", True)
        super().__init__(**base)
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, not {problem_type!r}")
        self.split = self._split_policy(
            split, split_column, target, problem_type, [*numeric_features, *categorical_features]
        )
        self._set_connections(mlflow_conn_id, storage_conn_id)
        self.dataset_uri = dataset_uri
        self.target = target
        self.numeric_features = list(numeric_features)
        self.categorical_features = list(categorical_features)
        self.problem_type = problem_type
        self.split_column = self.split.column
        self.hyperparameters = {} if hyperparameters is None else hyperparameters
        self.experiment_name = experiment_name
        self.run_tags = run_tags or {}
        self.backend = backend
        self.gpus = gpus
        self.gpu_resource = gpu_resource
        self.secret_name = secret_name
        self.image = image or option("trainer_image")
        self.namespace = namespace or option("namespace")
        #: KubernetesPodOperator's arguments, for the pod (see :meth:`pod_operator`).
        self.pod_options: dict[str, Any] = kwargs
        self._pod: KubernetesPodOperator | None = None
        self._process: LocalTrainer | None = None
        if not _has_template(self.hyperparameters):  # else once rendered, in execute()
            try:
                check_hyperparameter_arguments(self._hyperparameter_arguments())
            except TrainerInputError as err:
                raise ValueError(f"bad hyperparameters: {err}") from err

    def check_trainer_arguments(self) -> None:
        """Parse the trainer's arguments as the trainer will (the same parser, no environment).

        :raises ValueError: bad ``hyperparameters``, or arguments the trainer would reject, with its message.
        """
        try:
            parse_config(self.trainer_arguments(), env={})
        except TrainerInputError as err:
            raise ValueError(f"the trainer would reject its arguments: {err}") from err

    @staticmethod
    def _split_policy(
        split: SplitPolicy | None, split_column: str | None, target: str, problem_type: str, features: list[str]
    ) -> SplitPolicy:
        """The split policy, checked at parse time against the columns and the problem type."""
        if split is None:
            return SplitPolicy.existing(split_column or Split.COLUMN)
        if not isinstance(split, SplitPolicy):
            raise TypeError(
                f"split must be a SplitPolicy (e.g. SplitPolicy.random_by(seed=0)), not {type(split).__name__}"
            )
        if split_column is not None and split_column != split.column:
            raise ValueError(f"split_column {split_column!r} differs from the split policy's column {split.column!r}")
        if split.column == target or split.column in features:
            raise ValueError(f"the split policy's column {split.column!r} is the target or a feature")
        if split.stratify and problem_type != ProblemType.BINARY:
            raise ValueError(f"a stratified split needs problem_type {ProblemType.BINARY!r}, not {problem_type!r}")
        return split

    def trainer_arguments(self) -> list[str]:
        """The trainer's command-line arguments, from the rendered fields."""
        args = [
            "--data-uri", self.dataset_uri,
            "--target", self.target,
            "--problem-type", self.problem_type,
            "--split-column", self.split_column,
        ]  # fmt: skip
        if self.split != SplitPolicy.existing(self.split_column):  # the trainer's default: images before 0.2 run
            args += ["--split-policy", self.split.to_json()]
        if self.numeric_features:
            args += ["--numeric-features", ",".join(self.numeric_features)]
        if self.categorical_features:
            args += ["--categorical-features", ",".join(self.categorical_features)]
        return args + self._hyperparameter_arguments()

    def _hyperparameter_arguments(self) -> list[str]:
        """``hyperparameters`` as trainer options, after checking their keys.

        :raises ValueError: see :func:`check_hyperparameters`.
        """
        args = []
        for key, value in sorted(check_hyperparameters(self.hyperparameters).items()):
            if isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            args += [f"--{key.replace('_', '-')}", str(value)]
        return args

    @staticmethod
    def _identity(context: Context, with_try: bool) -> dict[str, str]:
        """The tags that identify this task instance's runs (and this try's, ``with_try``)."""
        ti = context["ti"]
        identity = {Tag.AIRFLOW_DAG_ID: ti.dag_id, Tag.AIRFLOW_RUN_ID: ti.run_id, Tag.AIRFLOW_TASK_ID: ti.task_id}
        return identity | ({Tag.AIRFLOW_TRY_NUMBER: str(ti.try_number)} if with_try else {})

    def _start_run(self, context: Context) -> tuple[str, bool]:
        """Reuse a finished run of this task instance (a retry after training); on Kubernetes, adopt the run of
        a pod an earlier try left running (KubernetesPodOperator reattaches to it); else create a new run."""
        pods = self._pod_module()
        client = self.mlflow_hook.get_conn()
        earlier = self.mlflow_hook.find_runs_by_tags(self.experiment_name, self._identity(context, False))
        for mlflow_run_id in earlier:
            run = client.get_run(mlflow_run_id)
            if run.info.status == "FINISHED" and Tag.MODEL_URI in run.data.tags:
                self.log.info("Reusing run %s: this task instance already trained a model", mlflow_run_id)
                if pods is not None and self._pod is not None:
                    pods.delete_finished_pod(self._pod, context)
                return mlflow_run_id, True
        if pods is not None and self._pod is not None:
            adopted = pods.running_pod_run(self._pod, context)
            if adopted is not None:
                self.log.info("Reattaching to the pod an earlier try left running, training run %s", adopted)
                return adopted, False
        # Nothing trains the earlier tries' runs any more: their worker died (a local trainer dies with it),
        # or their pod finished, failed or was evicted. A run still RUNNING is ended FAILED.
        for stale in earlier:
            self._fail_run_if_running(stale)
        ti = context["ti"]
        tags = {
            **{key: str(value) for key, value in self.run_tags.items()},
            **self._identity(context, True),
            Tag.TRAINER_BACKEND: training_backend(self.backend),
            Tag.TRAINER_IMAGE: self.image or "",
        }
        run_name = f"{ti.dag_id}.{ti.task_id}.{ti.run_id}.{ti.try_number}"
        return self.mlflow_hook.create_run(self.experiment_name, run_name, tags), False

    def execute(self, context: Context) -> TrainingResult:
        """Check the rendered arguments, create or reuse the MLflow run, train on the chosen backend, and read
        the result back. Bad arguments fail the task without retry, before any run, pod or process exists."""
        local = training_backend(self.backend) == LOCAL
        if local:
            require_extra("trainer")
        try:
            self.check_trainer_arguments()
            if not local:
                self._check_rendered_gpus(self._rendered_pod(context))
        except ValueError as err:
            raise AirflowFailException(str(err)) from err
        mlflow_run_id, reused = self._start_run(context)
        failpoint("training.run_created")
        run = self.mlflow_hook.get_conn().get_run(mlflow_run_id)
        MlflowRunLink.persist(context, self.mlflow_hook.run_url(mlflow_run_id, run.info.experiment_id))
        if not reused:
            with self._failing_the_run(mlflow_run_id):
                if local:
                    self._train_locally(mlflow_run_id, context)
                else:
                    self._train_in_pod(context, mlflow_run_id)
        return self._result(mlflow_run_id)

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> TrainingResult:
        """Resume after a deferred pod finished: end the pod as KubernetesPodOperator does, then read the run
        its trainer logged into back (named by the trigger event).

        :param context: the task's context.
        :param event: the trigger's event.
        """
        mlflow_run_id = event[_RUN_EVENT_KEY]
        pod = self._rendered_pod(context)
        with self._failing_the_run(mlflow_run_id):
            pod.trigger_reentry(context, event)
        return self._result(mlflow_run_id)

    @contextmanager
    def _failing_the_run(self, mlflow_run_id: str) -> Iterator[None]:
        """End the MLflow run FAILED if training fails (not if the task defers: the pod trains on), with the
        scheduler's reason when the pod was never scheduled."""
        pods = self._pod_module()
        try:
            yield
        except TaskDeferred:
            raise
        except BaseException as err:
            self._fail_run_if_running(mlflow_run_id)
            if pods is not None and self._pod is not None and (unscheduled := pods.unscheduled(self._pod, err)):
                raise AirflowException(unscheduled) from err
            raise

    def _pod_module(self) -> ModuleType | None:
        """``operators.training_pod`` once this task built its pod; ``None`` before (the local backend never
        imports the Kubernetes clients)."""
        if self._pod is None:
            return None
        from airflow_mlops_provider.operators import training_pod

        return training_pod

    def pod_operator(self) -> KubernetesPodOperator:
        """The KubernetesPodOperator that runs this task's trainer pod, built on first use (unrendered)."""
        from airflow_mlops_provider.operators import training_pod

        if self._pod is None:
            self._pod = training_pod.pod_operator(
                self.task_id,
                image=self.image,
                namespace=self.namespace,
                gpus=self.gpus,
                gpu_resource=self.gpu_resource,
                cpu=self.cpu,
                memory=self.memory,
                shm_size=self.shm_size,
                options=self.pod_options,
            )
        return self._pod

    def _rendered_pod(self, context: Context) -> KubernetesPodOperator:
        """A new pod operator for this try, its templated fields rendered with this task's template env."""
        self._pod = None
        pod = self.pod_operator()
        pod.render_template_fields(context, jinja_env=self.get_template_env())
        return pod

    def _train_in_pod(self, context: Context, mlflow_run_id: str) -> None:
        from airflow_mlops_provider.operators import training_pod

        pod = self.pod_operator()
        self.prepare_pod(mlflow_run_id)
        pod.trigger_kwargs = {**(pod.trigger_kwargs or {}), _RUN_EVENT_KEY: mlflow_run_id}
        training_pod.execute(pod, context)

    def _check_rendered_gpus(self, pod: KubernetesPodOperator) -> None:
        """Refuse a templated ``gpus`` that did not render to a count, before anything is created.

        :param pod: the rendered pod operator.
        """
        from airflow_mlops_provider.operators import training_pod

        check_gpus(training_pod.rendered_gpus(pod, self.gpu_resource), rendered=True)

    def build_pod_request_obj(self, context: Context | None = None, *, dry_run: bool = False) -> Any:
        """The trainer's pod (a ``V1Pod``), as KubernetesPodOperator builds it.

        :param context: the task's context.
        :param dry_run: build without a Kubernetes API client.
        """
        return self.pod_operator().build_pod_request_obj(context, dry_run=dry_run)

    def prepare_pod(self, mlflow_run_id: str) -> None:
        """Set the trainer's arguments and env on the pod, before the pod is built.

        :param mlflow_run_id: the MLflow run the trainer logs into.
        """
        from airflow_mlops_provider.operators import training_pod

        secret_keys = {*self.mlflow_hook.secret_env_keys(), *self.storage_hook.secret_env_keys()}
        env = training_pod.pod_env(self._trainer_env(mlflow_run_id), secret_keys, self.secret_name)
        training_pod.prepare(self.pod_operator(), self.trainer_arguments(), env)

    def _trainer_env(self, mlflow_run_id: str) -> dict[str, str]:
        """The trainer's env from the MLflow and storage connections (secrets included), and its run."""
        return {**self.mlflow_hook.env(), **self.storage_hook.env(), RUN_ID_ENV: mlflow_run_id}

    def _train_locally(self, mlflow_run_id: str, context: Context) -> None:
        given = self.render_template(self.pod_options.get("env_vars") or {}, context)
        pairs = given.items() if isinstance(given, dict) else ((var.name, var.value) for var in given)
        env = {**os.environ, **self._trainer_env(mlflow_run_id)}
        env.update({name: str(value) for name, value in pairs if value is not None})
        arguments = self.trainer_arguments()
        # A fork of this task process (its libraries are imported already) when safe, else a new interpreter;
        # an argument list, never a shell. Its own process group, so that on_kill stops it and whatever it
        # started; it gets SIGTERM if this task process dies first.
        self._process = LocalTrainer(arguments, env)
        self.log.info("Training locally %s: python -m %s %s", self._process.how, TRAINER_MODULE, " ".join(arguments))
        for line in self._process.lines():
            self.log.info("trainer: %s", line)
        code = self._process.wait()
        if code == EXIT_BAD_INPUT:
            raise AirflowFailException(
                f"The trainer rejected its input (exit code {code}); its message is above in this log"
            )
        if code:
            raise RuntimeError(f"The trainer failed (exit code {code}); its output is above in this log")

    def on_kill(self) -> None:
        """Stop the local trainer process group, or the pod (as KubernetesPodOperator does)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except TimeoutError:
                os.killpg(self._process.pid, signal.SIGKILL)
            return
        if self._pod is not None:
            self._pod.on_kill()

    def _fail_run_if_running(self, mlflow_run_id: str) -> None:
        client = self.mlflow_hook.get_conn()
        if client.get_run(mlflow_run_id).info.status == "RUNNING":
            client.set_terminated(mlflow_run_id, status="FAILED")

    def _result(self, mlflow_run_id: str) -> TrainingResult:
        run = self.mlflow_hook.get_conn().get_run(mlflow_run_id)
        tags = run.data.tags
        if run.info.status != "FINISHED" or Tag.MODEL_URI not in tags:
            raise RuntimeError(
                f"MLflow run {mlflow_run_id} ended {run.info.status} without a logged model; see the trainer output"
            )
        result = TrainingResult(
            mlflow_run_id=mlflow_run_id,
            experiment_id=run.info.experiment_id,
            model_uri=tags[Tag.MODEL_URI],
            metrics=dict(run.data.metrics),
            dataset_uri=tags.get(Tag.DATASET_URI),
            dataset_digest=tags.get(Tag.DATASET_DIGEST),
        )
        self._openlineage = partial(training_lineage, result, self.mlflow_hook.tracking_uri)
        return result
