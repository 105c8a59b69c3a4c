"""Watching DAG runs of the embedded stack: task-by-task progress, failed tasks' logs, runs that appear.

Used by ``demo.py``; every function takes the :class:`Stack` so that a dead server fails the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from demo.api import AirflowApi
from demo.processes import StackError, wait_for
from demo.stack import Stack

RUN_TIMEOUT = 1800.0
QUIET_TASK_STATES = {None, "scheduled", "queued", "removed"}
LOG_TAIL_LINES = 40


class DemoError(RuntimeError):
    """The continuous-training loop did not complete."""


def run_to_end(api: AirflowApi, stack: Stack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Print a run's progress until it ends; fail with the failed tasks' logs unless it succeeded.

    Returns the run's task instances.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param dag_id: the DAG.
    :param run_id: the run.
    """
    print(f"{dag_id} run {run_id}:", flush=True)
    final = follow_run(api, stack, dag_id, run_id)
    tis = api.task_instances(dag_id, run_id)
    print(f"  -> {final['state']} in {final.get('duration') or 0.0:.1f}s", flush=True)
    if final["state"] != "success":
        failed = [ti for ti in tis if ti["state"] == "failed"]
        for ti in failed:
            print_log_tail(api, stack, ti)
        names = ", ".join(task_label(ti) for ti in failed) or "no task failed; see the scheduler log"
        raise DemoError(f"{dag_id} run {run_id} ended {final['state']}: {names}")
    return tis


def follow_run(api: AirflowApi, stack: Stack, dag_id: str, run_id: str) -> dict[str, Any]:
    """Print each task whenever its state changes, until the run ends; return the final run.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param dag_id: the DAG.
    :param run_id: the run to follow.
    """
    seen: dict[str, str | None] = {}
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        stack.check_alive()
        dag_run = api.dag_run(dag_id, run_id)
        for ti in sorted(api.task_instances(dag_id, run_id), key=_started_first):
            name = task_label(ti)
            if ti["state"] != seen.get(name) and ti["state"] not in QUIET_TASK_STATES:
                print_task(ti)
            seen[name] = ti["state"]
        if dag_run["state"] in ("success", "failed"):
            return dag_run
        time.sleep(1.0)
    raise DemoError(f"{dag_id} run {run_id} did not finish within {RUN_TIMEOUT:.0f}s")


def wait_for_new_run(
    api: AirflowApi, stack: Stack, dag_id: str, known: Collection[str], run_type: str, timeout: float
) -> str:
    """Wait until the scheduler creates a run of ``run_type`` not in ``known``; return its id.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param dag_id: the DAG.
    :param known: run ids that existed before.
    :param run_type: e.g. ``asset_triggered``.
    :param timeout: seconds to wait.
    """

    def new_run() -> str | None:
        runs = [run for run in api.dag_runs(dag_id) if run["dag_run_id"] not in known]
        return next((run["dag_run_id"] for run in runs if run["run_type"] == run_type), None)

    try:
        return wait_for(f"a new {run_type} run of {dag_id}", new_run, timeout, stack.resources)
    except StackError as err:
        raise DemoError(str(err)) from err


def run_ids(api: AirflowApi, dag_id: str, states: Collection[str] = ()) -> list[str]:
    """The ids of the DAG's runs, oldest first; only those in ``states`` if given.

    :param api: the Airflow API.
    :param dag_id: the DAG.
    :param states: e.g. ``("queued", "running")``.
    """
    return [run["dag_run_id"] for run in api.dag_runs(dag_id) if not states or run["state"] in states]


def _started_first(ti: dict[str, Any]) -> tuple[str, str]:
    """Sort key: by start time (unstarted last), then by name."""
    return (ti.get("start_date") or "~", task_label(ti))


def task_label(ti: dict[str, Any]) -> str:
    """``task_id``, with ``[map_index]`` for a mapped task instance.

    :param ti: a task instance from the API.
    """
    return ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"


def print_task(ti: dict[str, Any]) -> None:
    """Print one progress line: ``  name  state  duration``.

    :param ti: a task instance from the API.
    """
    duration = ti.get("duration")
    shown = f"{duration:.1f}s" if duration is not None and ti["state"] != "running" else ""
    print(f"  {task_label(ti):<36} {ti['state']:<16} {shown}".rstrip(), flush=True)


def log_text(api: AirflowApi, stack: Stack, ti: dict[str, Any]) -> str:
    """A task instance's log, from the API or else from the log files.

    :param api: the Airflow API.
    :param stack: the stack (for the log folder).
    :param ti: the task instance.
    """
    try:
        return api.task_log(ti)
    except StackError as err:
        return f"(log API failed: {err})\n" + read_log_files(stack.airflow_home / "logs", ti)


def log_lines(api: AirflowApi, stack: Stack, ti: dict[str, Any], keep: Callable[[str], bool]) -> list[str]:
    """The lines of a task instance's log that ``keep`` accepts.

    :param api: the Airflow API.
    :param stack: the stack (for the log folder).
    :param ti: the task instance.
    :param keep: the filter.
    """
    return [line for line in log_text(api, stack, ti).splitlines() if keep(line)]


def print_log_tail(api: AirflowApi, stack: Stack, ti: dict[str, Any]) -> None:
    """Print the end of a failed task's log.

    :param api: the Airflow API.
    :param stack: the stack (for the log folder).
    :param ti: the failed task instance.
    """
    lines = log_text(api, stack, ti).splitlines()[-LOG_TAIL_LINES:]
    header = f"--- last {len(lines)} log lines of {task_label(ti)} (try {ti['try_number']}) ---"
    print(f"\n{header}\n" + "\n".join(lines) + "\n---", flush=True)


def read_log_files(logs_dir: Path, ti: dict[str, Any]) -> str:
    """Concatenate the task instance's log files under Airflow's default log layout.

    :param logs_dir: ``$AIRFLOW_HOME/logs``.
    :param ti: the task instance.
    """
    task_dir = logs_dir / f"dag_id={ti['dag_id']}" / f"run_id={ti['dag_run_id']}" / f"task_id={ti['task_id']}"
    files = sorted(task_dir.rglob(f"attempt={ti['try_number']}.log"))
    return "\n".join(path.read_text(errors="replace") for path in files) or f"(no log file under {task_dir})"
