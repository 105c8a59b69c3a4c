"""A rolling restart of the live prod stack's scheduler and of a Celery worker, in the middle of a
``continuous_training`` run: the run completes, with no task failed or retried and one model version.

Both are stopped through the demo's process management (``demo.prod.request``) while the run trains: the
scheduler first, then the worker running the training, which finishes its task before it exits (Celery's warm
shutdown). With the scheduler down the run cannot move on; both start again, and the scheduler picks the run
up where it was. The session's teardown then checks that no process of either generation survives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from demo.api import AirflowApi
from demo.prod import DRAIN_TIMEOUT, component_state, request
from tests.e2e.story import DEMO_TIMEOUT, LiveDemo
from tests.e2e.test_demo_prod import WORKLOAD
from tests.reliability.live_runs import MODEL, TRAINING, problems, run_id_for, versions_by_run, wait_for_runs

SCHEDULER = "airflow scheduler"
TRAIN_TASK, NEXT_TASK = "train_model", "register_model"
RUN_TIMEOUT = 900.0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(DEMO_TIMEOUT + RUN_TIMEOUT + DRAIN_TIMEOUT + 300)]


def wait(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)
    return value


def task(api: AirflowApi, run_id: str, task_id: str) -> dict[str, Any]:
    """A task instance of the run."""
    (ti,) = [ti for ti in api.task_instances(TRAINING, run_id) if ti["task_id"] == task_id]
    return ti


def worker_of(stack: dict[str, Any], run_id: str, task_id: str) -> str | None:
    """The Celery worker that received the task, from the workers' logs."""
    for worker, log in stack["worker_logs"].items():
        for match in WORKLOAD.finditer(Path(log).read_text(errors="replace")):
            if match.group(2) == run_id and match.group(3) == task_id:
                return str(worker)
    return None


def restarted(home: Path, component: str, action: str, timeout: float) -> str:
    """Request ``action`` of a component and wait until the stack reports it done; return its state."""
    request(home, component, action)  # type: ignore[arg-type]
    expected = re.compile(r"stopped" if action == "stop" else r"running \d+")
    state: str = wait(
        f"{component} to be {action}ped" if action == "stop" else f"{component} to start",
        lambda: (s := component_state(home, component)) and expected.fullmatch(s) and s,
        timeout,
    )
    return state


def test_a_run_completes_across_a_scheduler_and_worker_restart(
    live: tuple[LiveDemo, Path], stack: dict[str, Any], api: AirflowApi
) -> None:
    home = live[1]
    run_id = run_id_for("restart")
    api.trigger(TRAINING, run_id, None, {"model_name": MODEL, "epochs": 6, "seed": 7})
    wait(f"{TRAIN_TASK} to run", lambda: task(api, run_id, TRAIN_TASK)["state"] == "running", RUN_TIMEOUT)
    worker = f"airflow celery {wait('the worker of the training', lambda: worker_of(stack, run_id, TRAIN_TASK), 60)}"
    before = {name: _pids(home, name) for name in (SCHEDULER, worker)}
    assert all(before.values()), before

    restarted(home, SCHEDULER, "stop", 120)
    restarted(home, worker, "stop", DRAIN_TIMEOUT + 60)

    # The worker finished the training before it exited; with no scheduler, nothing else of the run started.
    assert task(api, run_id, TRAIN_TASK)["state"] == "success"
    assert task(api, run_id, NEXT_TASK)["state"] in (None, "scheduled")
    assert api.dag_run(TRAINING, run_id)["state"] == "running"
    assert [pid for pids in before.values() for pid in pids if psutil.pid_exists(pid)] == []

    after = {name: int(restarted(home, name, "start", 120).split()[1]) for name in (SCHEDULER, worker)}
    states = wait_for_runs(api, [run_id], RUN_TIMEOUT)

    assert states == {run_id: "success"}, problems(api, stack, run_id)
    assert problems(api, stack, run_id) == []
    assert [len(found) for found in versions_by_run(stack["mlflow"]["url"], [run_id]).values()] == [1]
    assert all(psutil.pid_exists(pid) for pid in after.values()), after


def _pids(home: Path, component: str) -> list[int]:
    """The live processes of the demo whose command line names the component (``scheduler``, ``worker1``)."""
    words = component.split()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if words[-1] not in cmdline or str(home) not in proc.environ().get("AIRFLOW_HOME", ""):
                continue
            found.append(proc.pid)
        except psutil.Error:
            continue
    return found
