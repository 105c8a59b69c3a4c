"""Keep a resumed task known to its executor while the report of its earlier process is still on the way.

A deferred or human-in-the-loop task runs twice under one try number: the process that paused, then the
process that resumes, both under the same ``TaskInstanceKey``. Airflow 3.3's ``LocalExecutor`` never puts a
started task in ``running``. When the resumption is queued before the executor has read the first process's
exit (the pause ended, but the worker reported seconds later, as on a loaded machine), the scheduler meets
that exit report for a queued task its executor does not know, takes it for the resumed task's and fails it:
"finished with state success, but the task instance's state attribute is queued". Keeping each started task
in ``running`` until the last of its processes has ended fixes it: the scheduler then recognises the stale
report as a requeued task's (its own rule) and lets the resumed task run. It also makes ``running`` (and the
open slots the scheduler reads from it) count the task processes, as the executor interface intends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from airflow.models.taskinstancekey import TaskInstanceKey


class ResumedTaskTracking:
    """Mixin for an executor whose task workloads each end with exactly one ``change_state``: a task key is
    in ``running`` from its first process's start until the last of its processes has ended."""

    running: set[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._processes: Counter[TaskInstanceKey] = Counter()

    def _process_workloads(self, workload_list: Sequence[Any]) -> None:
        """Count a process for each task workload and mark its key running, then hand them on.

        :param workload_list: the workloads the executor starts now.
        """
        for workload in workload_list:
            if isinstance(workload.key, TaskInstanceKey):
                self._processes[workload.key] += 1
                self.running.add(workload.key)
        super()._process_workloads(workload_list)  # type: ignore[misc]

    def change_state(self, key: Any, state: Any, info: Any = None, remove_running: bool = True) -> None:
        """Record a process's end; keep ``key`` running while a later process under it has not ended.

        :param key: the workload's key.
        :param state: the state it ended in.
        :param info: the executor's information on it.
        :param remove_running: whether the key may leave ``running``.
        """
        if isinstance(key, TaskInstanceKey) and key in self._processes:
            self._processes[key] -= 1
            if self._processes[key] > 0:
                remove_running = False  # a resumed process still runs under this key
            else:
                del self._processes[key]
        super().change_state(key, state, info, remove_running)  # type: ignore[misc]
