"""The ``[mlops]`` configuration section: its options, their readers, and the data locations under ``data_dir``.

Importing this module is cheap (provider discovery reads :data:`OPTIONS`); Airflow's configuration is
read only when a value is asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from airflow_mlops_provider import __version__

if TYPE_CHECKING:
    from airflow.sdk import Context

SECTION: Final = "mlops"
#: Where GPUTrainingOperator runs the trainer: a subprocess of the worker, or a (GPU) pod.
LOCAL, KUBERNETES = "local", "kubernetes"
BACKENDS: Final = (LOCAL, KUBERNETES)
_UNSAFE_SEGMENT_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Option:
    """One ``[mlops]`` option.

    :param description: what it sets (shown by ``airflow config list``).
    :param default: the value when unset; ``None`` for none.
    :param example: an example value.
    """

    description: str
    default: str | None
    example: str | None = None


#: The section's options, by name (env ``AIRFLOW__MLOPS__<NAME>``).
OPTIONS: Final = {
    "training_backend": Option(
        "Where GPUTrainingOperator runs the trainer: ``local`` (a subprocess of the worker, the embedded "
        "default) or ``kubernetes`` (a GPU pod).",
        "local",
        "kubernetes",
    ),
    "trainer_image": Option(
        "The trainer image for the kubernetes backend.", f"airflow-mlops-provider/trainer:{__version__}"
    ),
    "namespace": Option("Namespace of training pods (default: the connection's).", None),
    "data_dir": Option(
        "Where the example DAGs and unset output paths keep data (local path or s3:// URI): landing/ (raw "
        "feature batches), ingested/, quarantine/, training_sets/, validation/ (Data Docs), drift_reports/, "
        "drift_state/.",
        "/tmp/airflow-mlops",
    ),
    "allowed_roots": Option(
        "Comma-separated local directories and s3:// prefixes that tasks may read and write through the "
        "storage connection, besides data_dir. Unset: any location. Set: a URI outside data_dir and these "
        "roots is refused (PermissionError) before anything is read or written; the trainer and the drift "
        "check's child process get the same roots.",
        None,
        "s3://ml-data/,/srv/feature_repo/data",
    ),
}


def option(name: str) -> str | None:
    """The configured value of ``[mlops] name``, else its default.

    :param name: a key of :data:`OPTIONS`.
    """
    from airflow.sdk import conf

    value = conf.get(SECTION, name, fallback=None)
    return str(value) if value not in (None, "") else OPTIONS[name].default


def training_backend(explicit: str | None = None) -> str:
    """The backend to train on: ``explicit``, else ``[mlops] training_backend``, else ``local``.

    :param explicit: a backend named by the task, overriding configuration.
    """
    backend = explicit or option("training_backend") or LOCAL
    if backend not in BACKENDS:
        raise ValueError(f"Unknown training backend {backend!r}; choose one of {BACKENDS}")
    return backend


def data_dir() -> str:
    """``[mlops] data_dir`` without a trailing ``/``: a local directory or an ``s3://`` prefix where the
    example DAGs keep their data and unset output paths default."""
    return str(option("data_dir")).rstrip("/")


def storage_roots() -> tuple[str, ...] | None:
    """The data roots storage is confined to: ``data_dir`` and ``[mlops] allowed_roots``; ``None`` when
    ``allowed_roots`` is unset (no confinement)."""
    extra = option("allowed_roots")
    if not extra:
        return None
    return (data_dir(), *(root.strip() for root in extra.split(",") if root.strip()))


class DataFolder:
    """The folders under ``data_dir``."""

    LANDING: Final = "landing"  # raw batches arrive
    INGESTED: Final = "ingested"  # ingested raw batches: the spine of training sets
    QUARANTINE: Final = "quarantine"  # batches that failed validation, with their results
    TRAINING_SETS: Final = "training_sets"
    VALIDATION: Final = "validation"  # Data Docs
    DRIFT_REPORTS: Final = "drift_reports"
    DRIFT_STATE: Final = "drift_state"  # drift episode state
    PREDICTIONS: Final = "predictions"  # batch inference output, one file per run
    QUALITY: Final = "quality"  # live quality series and its episode state


def data_path(folder: str, *parts: str) -> str:
    """``<data_dir>/<folder>/<parts...>``.

    :param folder: a :class:`DataFolder`.
    :param parts: further path segments (a trailing ``""`` gives a ``/``-terminated prefix).
    """
    return "/".join([data_dir(), folder, *parts])


def safe_segment(part: str) -> str:
    """``part`` as one path segment: runs of anything but letters, digits, dots, dashes and underscores
    become ``_``.

    :param part: e.g. a run id such as ``scheduled__2026-01-01T00:00:00+00:00``.
    """
    return _UNSAFE_SEGMENT_CHARS.sub("_", part)


def task_output_path(context: Context, folder: str) -> str:
    """``<data_dir>/<folder>/<dag_id>/<run_id>/<task_id>[.<map_index>]``, each part a safe segment.

    :param context: the running task's context.
    :param folder: a :class:`DataFolder`, e.g. ``validation``.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    name = ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}.{map_index}"
    return data_path(folder, *(safe_segment(part) for part in (ti.dag_id, ti.run_id, name)))
