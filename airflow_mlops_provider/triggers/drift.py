"""DriftTrigger: watches current data against a reference, and fires when a check signals drift.

It is a ``BaseEventTrigger``, so it serves both a deferred :class:`~airflow_mlops_provider.sensors.drift.DriftSensor`
and an ``AssetWatcher`` (event-driven scheduling). Each poll is cheap: a fingerprint of the current data's
listing (names, sizes, etags or modification times) and of the reference (the version the model's alias
points at, or the reference file's listing). Only when it changed does the check run, in a child process
(``python -m airflow_mlops_provider.core.drift``), never in the triggerer's event loop or process.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_mlops_provider.core.drift.spec import DriftCheckSpec
from airflow_mlops_provider.hooks.connections import ConnectionsMixin
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook

if TYPE_CHECKING:
    from airflow_mlops_provider.core.drift.spec import DriftOutcome


class DriftTrigger(ConnectionsMixin, BaseEventTrigger):
    """Fire a ``TriggerEvent`` with the drift summary when a check signals drift: with the spec's
    ``state_uri``, once per drift episode (debounced, cooled down and capped by its ``episode_policy``),
    and never twice for the same window, across triggerer restarts.

    The check is :func:`~airflow_mlops_provider.core.drift.pipeline.run_drift_check`, run in a child process
    whose environment carries the MLflow and storage connections' settings (as the local trainer gets
    them). Without a ``state_uri`` the episode state is a temporary file of this trigger, lost on restart.
    A check of unchanged inputs is not run again: a window held back by a cooldown is judged once.

    :param spec: the check: a :class:`~airflow_mlops_provider.core.drift.spec.DriftCheckSpec`, or its
        ``to_dict()``.
    :param poll_interval: seconds between polls.
    :param mlflow_conn_id: the ``mlflow`` connection, for a model's training set as the reference.
    :param storage_conn_id: the ``mlops_s3`` connection (see
        :class:`~airflow_mlops_provider.hooks.storage.ObjectStorageHook`); ``None`` uses the environment.
    """

    def __init__(
        self,
        *,
        spec: DriftCheckSpec | Mapping[str, Any],
        poll_interval: float = 300.0,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
    ) -> None:
        super().__init__()
        self.spec = spec if isinstance(spec, DriftCheckSpec) else DriftCheckSpec.from_dict(spec)
        self.poll_interval = poll_interval
        self._set_connections(mlflow_conn_id, storage_conn_id)
        self._checked: str | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the JSON-serializable kwargs that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "spec": self.spec.to_dict(),
                "poll_interval": self.poll_interval,
                "mlflow_conn_id": self.mlflow_conn_id,
                "storage_conn_id": self.storage_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever (an ``AssetWatcher`` keeps listening; a deferred sensor stops at the first event).

        An unreachable store or server (a connection error, timeout or spent HTTP retries anywhere in the
        error's causes, as under an ``MlflowException`` for a server that is down) is retried at the next
        poll; any other error ends the trigger.
        """
        from airflow_mlops_provider.core.drift.worker import is_unreachable

        while True:
            try:
                outcome = await self.poll()
            except Exception as err:
                if not is_unreachable(err):
                    raise
                self.log.warning("Drift check failed, retrying in %s s: %s", self.poll_interval, err)
            else:
                if outcome is not None and outcome.fired:
                    yield TriggerEvent(dict(outcome.summary))
            await asyncio.sleep(self.poll_interval)

    async def poll(self) -> DriftOutcome | None:
        """Check once if the inputs changed since the last check; ``None`` when they did not, or when there is
        nothing to check yet (no champion, no current data, no row in the window)."""
        from airflow_mlops_provider.core.drift.spec import NothingToCheckError
        from airflow_mlops_provider.core.drift.worker import check_in_subprocess

        fingerprint = await asyncio.to_thread(self._inputs_fingerprint)
        if fingerprint == self._checked:
            return None
        env = await asyncio.to_thread(self._child_env)
        outcome = None
        try:
            outcome = await check_in_subprocess(self._child_spec(), env, self._log_child)
        except NothingToCheckError as err:
            self.log.info("Nothing to check yet: %s", err)
        self._checked = fingerprint
        return outcome

    async def cleanup(self) -> None:
        """Remove the temporary episode state, if any."""
        if self._scratch is not None:
            self._scratch.cleanup()
        await super().cleanup()

    def _inputs_fingerprint(self) -> str:
        return self.spec.inputs_fingerprint(self.storage_hook.get_conn(), self.mlflow_hook.get_conn)

    def _child_env(self) -> dict[str, str]:
        """The triggerer's environment with the storage settings, and MLflow's when the model is the reference."""
        mlflow = {} if self.spec.reference_uri else self.mlflow_hook.env()
        return {**os.environ, **mlflow, **self.storage_hook.env()}

    def _child_spec(self) -> DriftCheckSpec:
        """The spec as a watcher's check (``event_only``), with a temporary episode state when it has none."""
        if self.spec.state_uri:
            return replace(self.spec, event_only=True)
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="drift-trigger-")
        state_uri = os.path.join(self._scratch.name, "episode_state.json")
        return replace(self.spec, state_uri=state_uri, event_only=True)

    def _log_child(self, line: str) -> None:
        self.log.info("drift check: %s", line)
