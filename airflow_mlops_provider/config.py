"""The ``[mlops]`` data location, and the default output paths of task instances under it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow.sdk import conf

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_DATA_DIR = "/tmp/airflow-mlops"
_UNSAFE_SEGMENT_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def data_dir() -> str:
    """``[mlops] data_dir`` (env ``AIRFLOW__MLOPS__DATA_DIR``) without a trailing ``/``: a local directory or
    an ``s3://`` prefix where the example DAGs keep their data and unset output paths default."""
    return str(conf.get("mlops", "data_dir", fallback=DEFAULT_DATA_DIR)).rstrip("/")


def safe_segment(part: str) -> str:
    """``part`` as one path segment: runs of anything but letters, digits, dots, dashes and underscores
    become ``_``.

    :param part: e.g. a run id such as ``scheduled__2026-01-01T00:00:00+00:00``.
    """
    return _UNSAFE_SEGMENT_CHARS.sub("_", part)


def task_output_path(context: Context, folder: str) -> str:
    """``<data_dir>/<folder>/<dag_id>/<run_id>/<task_id>[.<map_index>]``, each part a safe segment.

    :param context: the running task's context.
    :param folder: the kind of output, e.g. ``validation``.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    name = ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}.{map_index}"
    return "/".join([data_dir(), folder, *(safe_segment(part) for part in (ti.dag_id, ti.run_id, name))])
