"""A resumed task stays known to its executor while the exit report of the process that paused is pending.

The whole race runs under a real scheduler in tests/integration/test_approval_scheduler.py (answers given at
once); here the executor's bookkeeping, step by step, beside Airflow's own for contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.executors.base_executor import BaseExecutor
from airflow.executors.local_executor import LocalExecutor
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from airflow_mlops_provider.preload import PreloadingLocalExecutor
from airflow_mlops_provider.resumed_tasks import ResumedTaskTracking

KEY = TaskInstanceKey("ct", "approve_promotion", "run_1", try_number=1, map_index=-1)
OTHER = TaskInstanceKey("ct", "train_model", "run_1", try_number=1, map_index=-1)


class Dispatching(BaseExecutor):
    """An executor that hands its workloads on as Airflow 3.3's LocalExecutor does: never into ``running``."""

    def _process_workloads(self, workload_list: Sequence[Any]) -> None:
        for workload in workload_list:
            del self.queued_tasks[workload.key]


class Tracking(ResumedTaskTracking, Dispatching):
    pass


def _start(executor: BaseExecutor, key: TaskInstanceKey) -> None:
    workload = SimpleNamespace(key=key)
    executor.queued_tasks[key] = workload  # type: ignore[assignment]
    executor._process_workloads([workload])  # type: ignore[list-item]


def _knows(executor: BaseExecutor, key: TaskInstanceKey) -> bool:
    return executor.has_task(SimpleNamespace(id=f"id-{key.task_id}", key=key))  # type: ignore[arg-type]


@pytest.mark.parametrize("executor_class", [Dispatching, Tracking])
def test_the_stale_exit_report_of_a_paused_process(executor_class: type[BaseExecutor]) -> None:
    executor = executor_class()
    _start(executor, KEY)  # the process that pauses for input
    _start(executor, KEY)  # the answer came: the resumption is queued before the pause's exit was read
    executor.change_state(KEY, TaskInstanceState.SUCCESS)  # that exit report, read late
    assert executor.event_buffer[KEY] == (TaskInstanceState.SUCCESS, None)  # the scheduler still gets it
    # Airflow's executor forgets the resumed task here, and the scheduler fails it as killed externally.
    assert _knows(executor, KEY) is (executor_class is Tracking)


def test_a_key_leaves_running_with_the_last_of_its_processes() -> None:
    executor = Tracking()
    _start(executor, KEY)
    _start(executor, OTHER)
    assert executor.running == {KEY, OTHER} and executor.slots_available == executor.parallelism - 2
    executor.change_state(KEY, TaskInstanceState.SUCCESS)  # paused, reported in time
    assert executor.running == {OTHER}
    _start(executor, KEY)  # resumed
    _start(executor, KEY)  # deferred again and resumed before the report
    executor.change_state(KEY, TaskInstanceState.SUCCESS)
    assert KEY in executor.running
    executor.change_state(KEY, TaskInstanceState.FAILED)  # the last process failed
    executor.change_state(OTHER, TaskInstanceState.SUCCESS)
    assert executor.running == set() and executor._processes == {}
    executor.change_state(KEY, TaskInstanceState.FAILED)  # the scheduler failing a task it never started
    assert executor.event_buffer[KEY] == (TaskInstanceState.FAILED, None)


def test_the_preloading_executor_tracks_resumed_tasks() -> None:
    assert PreloadingLocalExecutor.__mro__[1:3] == (ResumedTaskTracking, LocalExecutor)
