"""Trigger that waits until a feature view's offline source holds data up to a given time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeGuard

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlops_provider.hooks.storage import ObjectStorageHook

if TYPE_CHECKING:
    import pandas as pd


class FeatureFreshnessTrigger(BaseTrigger):
    """Poll the newest event timestamp of an offline source (parquet footers) until it reaches ``target``.

    The reading runs in a thread, so the triggerer's event loop never blocks. Unreachable storage is
    retried at the next poll; any other error ends the wait with an ``error`` event.

    :param source_uri: the source's parquet file or directory (local or ``s3://``).
    :param timestamp_field: the event timestamp column.
    :param target: ISO 8601 time the data must reach (``latest >= target``).
    :param poll_interval: seconds between polls.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` sources; the default falls back to the
        environment when it does not exist, ``None`` always takes the environment.
    """

    def __init__(
        self,
        source_uri: str,
        timestamp_field: str,
        target: str,
        poll_interval: float = 60.0,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
    ) -> None:
        super().__init__()
        self.source_uri = source_uri
        self.timestamp_field = timestamp_field
        self.target = target
        self.poll_interval = poll_interval
        self.storage_conn_id = storage_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's import path and constructor arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "source_uri": self.source_uri,
                "timestamp_field": self.timestamp_field,
                "target": self.target,
                "poll_interval": self.poll_interval,
                "storage_conn_id": self.storage_conn_id,
            },
        )

    def latest(self) -> pd.Timestamp | None:
        """Read the source's newest event timestamp now (blocking); ``None`` while it has no rows."""
        from airflow_mlops_provider.core.features.offline_source import max_event_timestamp

        store = ObjectStorageHook(self.storage_conn_id).get_conn()
        return max_event_timestamp(self.source_uri, self.timestamp_field, store)

    def is_fresh(self, latest: pd.Timestamp | None) -> TypeGuard[pd.Timestamp]:
        """Tell whether data up to ``latest`` reaches the target.

        :param latest: the newest event timestamp, from :meth:`latest`.
        """
        from airflow_mlops_provider.core.features.batches import to_utc

        return latest is not None and latest >= to_utc(self.target)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one ``success`` event once the data is fresh, or one ``error`` event."""
        while True:
            try:
                latest = await asyncio.to_thread(self.latest)
            except ConnectionError as err:
                self.log.warning("Cannot read %s yet, retrying: %s", self.source_uri, err)
                latest = None
            except Exception as err:
                yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
                return
            if self.is_fresh(latest):
                yield TriggerEvent({"status": "success", "latest": latest.isoformat(), "target": self.target})
                return
            self.log.info("%s has data up to %s, waiting for %s", self.source_uri, latest, self.target)
            await asyncio.sleep(self.poll_interval)
