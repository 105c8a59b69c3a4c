"""Kill a task at a failpoint and retry it, as a worker killed there and retried by Airflow would be."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from airflow_mlops_provider.failpoints import ENV, STATE_ENV
from tests.fixtures.task_server import TaskServer


@dataclass(frozen=True)
class Attempts:
    """What happened to a task run under a failpoint: the exit code of each try, and the last output."""

    codes: list[int]
    output: str

    @property
    def killed(self) -> int:
        """How many tries died of SIGKILL."""
        return sum(code == -signal.SIGKILL for code in self.codes)


def run_with_retries(
    server: TaskServer,
    script: str,
    point: str,
    hit: int,
    state: Path,
    retries: int = 2,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Attempts:
    """Run ``script`` in a task process with ``point`` armed for its ``hit``-th pass; retry while it dies.

    :param server: forks each try, a process of its own, from a warm interpreter (as a preloading worker).
    :param script: Python source of the task (it runs from the project root).
    :param point: the failpoint's name.
    :param hit: which pass of the point kills (1-based, counted across tries).
    :param state: a folder of this test's own where the passes are counted.
    :param retries: tries after the first, as ``retries`` on an Airflow task.
    :param env: extra environment for every try.
    :param timeout: seconds per try.
    """
    state.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), ENV: f"{point}:{hit}", STATE_ENV: str(state)}
    codes: list[int] = []
    output = ""
    for _ in range(retries + 1):
        task = server.start(script, full_env)
        try:
            output = task.communicate(timeout)[0]
        except subprocess.TimeoutExpired:
            task.kill()
            raise
        codes.append(task.wait())
        if codes[-1] == 0:
            break
    return Attempts(codes, output)
