"""DriftTrigger: polls current data against a reference and fires once per drift episode.

It is a ``BaseEventTrigger``, so it serves both a deferred :class:`~airflow_mlops_provider.sensors.drift.DriftSensor`
and an ``AssetWatcher`` (event-driven scheduling). Each poll runs in a worker thread: resolve the reference
(the champion's training set, or a fixed URI), read the current window, and, only when that window's
content is new, compute drift and ask the episode policy (debounce, cooldown, cap) whether to fire. The
policy's state is a JSON document at ``state_uri``, so a restarted triggerer neither forgets an episode
nor fires twice for the same window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_mlops_provider.core.drift.episodes import EpisodePolicy, EpisodeStateFile
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops_provider.core.drift.check import ReferenceSet
    from airflow_mlops_provider.core.io.storage import ObjectStore


class DriftTrigger(BaseEventTrigger):
    """Fire a ``TriggerEvent`` with the drift summary when a new drift episode starts.

    :param current_uri: the current data (features or predictions), local path or ``s3://``.
    :param model_name: the registered model whose ``model_alias`` version's training set is the reference.
    :param model_alias: the alias to follow; a new champion starts a new episode.
    :param reference_uri: a fixed reference dataset instead of the champion's.
    :param split_value: the reference rows to keep by split column; ``None`` keeps all.
    :param time_column: the current data's event-time column.
    :param lookback_seconds: check only rows newer than the newest row minus this.
    :param columns: the columns to compare; by default the model's features, else the shared columns.
    :param exclude_columns: columns never compared.
    :param drift_config: :class:`~airflow_mlops_provider.core.drift.compute.DriftConfig` fields.
    :param state_uri: where the episode state lives (a JSON file, local or ``s3://``); ``None`` keeps it
        in memory, lost when the trigger restarts.
    :param debounce: drifted windows in a row that start an episode.
    :param clear_after: clean windows in a row that end it.
    :param cooldown_seconds: minimum time between two events.
    :param max_events: at most this many events per ``period_seconds``.
    :param period_seconds: the cap's period.
    :param report_prefix: when set, Evidently's report of each fired window is stored under
        ``<report_prefix>/<window id>/``.
    :param poll_interval: seconds between polls.
    :param mlflow_conn_id: the ``mlflow`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection; ``None`` uses the environment.
    """

    def __init__(
        self,
        *,
        current_uri: str,
        model_name: str | None = None,
        model_alias: str = "champion",
        reference_uri: str | None = None,
        split_value: str | None = "train",
        time_column: str | None = None,
        lookback_seconds: float | None = None,
        columns: Sequence[str] = (),
        exclude_columns: Sequence[str] = (),
        drift_config: dict[str, Any] | None = None,
        state_uri: str | None = None,
        debounce: int = 1,
        clear_after: int = 1,
        cooldown_seconds: float = 0.0,
        max_events: int | None = None,
        period_seconds: float = 86_400.0,
        report_prefix: str | None = None,
        poll_interval: float = 300.0,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        if not (reference_uri or model_name):
            raise ValueError("DriftTrigger needs reference_uri or model_name")
        self.current_uri = current_uri
        self.model_name = model_name
        self.model_alias = model_alias
        self.reference_uri = reference_uri
        self.split_value = split_value
        self.time_column = time_column
        self.lookback_seconds = lookback_seconds
        self.columns = list(columns)
        self.exclude_columns = list(exclude_columns)
        self.drift_config = dict(drift_config or {})
        self.state_uri = state_uri
        self.policy = EpisodePolicy(debounce, clear_after, cooldown_seconds, max_events, period_seconds)
        self.report_prefix = report_prefix
        self.poll_interval = poll_interval
        self.mlflow_conn_id = mlflow_conn_id
        self.storage_conn_id = storage_conn_id
        self._store: ObjectStore | None = None
        self._states: EpisodeStateFile | None = None
        self._reference: tuple[ReferenceSet, pd.DataFrame] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the JSON-serializable kwargs that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "current_uri": self.current_uri,
                "model_name": self.model_name,
                "model_alias": self.model_alias,
                "reference_uri": self.reference_uri,
                "split_value": self.split_value,
                "time_column": self.time_column,
                "lookback_seconds": self.lookback_seconds,
                "columns": self.columns,
                "exclude_columns": self.exclude_columns,
                "drift_config": self.drift_config,
                "state_uri": self.state_uri,
                "debounce": self.policy.debounce,
                "clear_after": self.policy.clear_after,
                "cooldown_seconds": self.policy.cooldown_seconds,
                "max_events": self.policy.max_events,
                "period_seconds": self.policy.period_seconds,
                "report_prefix": self.report_prefix,
                "poll_interval": self.poll_interval,
                "mlflow_conn_id": self.mlflow_conn_id,
                "storage_conn_id": self.storage_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever (an ``AssetWatcher`` keeps listening; a deferred sensor stops at the first event).

        An unreachable store or server is retried at the next poll; any other error ends the trigger.
        """
        while True:
            try:
                payload = await asyncio.to_thread(self.poll)
            except (ConnectionError, TimeoutError) as err:
                self.log.warning("Drift check failed, retrying in %s s: %s", self.poll_interval, err)
                payload = None
            if payload is not None:
                yield TriggerEvent(payload)
            await asyncio.sleep(self.poll_interval)

    def poll(self) -> dict[str, Any] | None:
        """Check the current window once (blocking); return the event payload when an episode fires.

        No champion yet, a missing current dataset or an empty window is not an error: there is just
        nothing to check yet.
        """
        from airflow_mlops_provider.core.drift.check import (
            EmptyWindowError,
            compare,
            drift_summary,
            load_window,
        )
        from airflow_mlops_provider.core.drift.compute import DriftConfig
        from airflow_mlops_provider.core.drift.report import render_report, store_report
        from airflow_mlops_provider.core.io.datasets import dataset_digest
        from airflow_mlops_provider.core.models.lineage import AliasNotSetError, reference_set

        store = self._object_store()
        lookback = None if self.lookback_seconds is None else timedelta(seconds=self.lookback_seconds)
        try:
            reference = reference_set(
                self.reference_uri, self.model_name, self.model_alias, self.mlflow_conn_id, self.split_value
            )
            current = load_window(self.current_uri, store, self.time_column, lookback=lookback)
        except (AliasNotSetError, FileNotFoundError, EmptyWindowError) as err:
            self.log.info("Nothing to check yet: %s", err)
            return None
        window = dataset_digest(current)
        states = self._state_file(store)
        state = states.load()
        if not state.is_new(reference.key, window):
            self.log.debug("Window %s was already checked against %s", window, reference.key)
            return None
        reference_frame = self._reference_frame(reference, store)
        config = DriftConfig.from_dict(self.drift_config)
        exclude = [self.time_column, *self.exclude_columns]
        result = compare(reference, reference_frame, current, config, self.columns, exclude)
        decision = state.observe(self.policy, reference.key, window, result.dataset_drift, time.time())
        self.log.info(
            "Window %s: %d/%d columns drifted (%s); %s",
            window, len(result.drifted_columns), len(result.columns), result.drifted_columns, decision.reason,
        )  # fmt: skip
        payload = drift_summary(reference, self.current_uri, window, result) if decision.fire else None
        if payload is not None and self.report_prefix:
            rendered = render_report(reference_frame, current, result, config)
            stored = store_report(store, f"{self.report_prefix.rstrip('/')}/{window}", payload, rendered)
            payload["report_uri"] = stored.main_uri
        states.save(state)  # after the report, so a failed report is retried on the next poll
        return payload

    def _object_store(self) -> ObjectStore:
        if self._store is None:
            self._store = ObjectStorageHook(self.storage_conn_id).get_conn()
        return self._store

    def _state_file(self, store: ObjectStore) -> EpisodeStateFile:
        if self._states is None:
            self._states = EpisodeStateFile(self.state_uri, store)
        return self._states

    def _reference_frame(self, reference: ReferenceSet, store: ObjectStore) -> pd.DataFrame:
        """The reference rows, read again only when the reference changes (e.g. a new champion)."""
        if self._reference is None or self._reference[0] != reference:
            self._reference = (reference, reference.load(store))
        return self._reference[1]
