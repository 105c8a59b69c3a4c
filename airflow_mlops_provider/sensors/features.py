"""Sensors for feature data: batches landing in a landing zone, and a feature view's freshness."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import FreshnessResult
from airflow_mlops_provider.hooks.connections import ConnectionsMixin
from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from airflow_mlops_provider.triggers.features import FeatureFreshnessTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class LandedBatchesSensor(ConnectionsMixin, BaseSensorOperator):
    """Wait until raw batches (parquet or CSV files) are in a landing zone; return their URIs, sorted.

    Reschedules between pokes by default, holding no worker slot while it waits. A run triggered by hand
    does not wait: it returns what has landed, or, with nothing there, is skipped at once.

    :param prefix: the landing zone, a ``/``-terminated directory or ``s3://`` prefix (templated); by
        default ``[mlops] data_dir``/landing/.
    :param storage_conn_id: the ``mlops_s3`` connection for an ``s3://`` landing zone; the default falls back
        to the environment when it does not exist, ``None`` always takes the environment.
    """

    template_fields: Sequence[str] = ("prefix",)

    def __init__(
        self,
        *,
        prefix: str | None = None,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.prefix = prefix
        self._set_connections(storage_conn_id=storage_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        """List the landing zone; done when it holds a batch (skip a manual run when it holds none)."""
        from airflow_mlops_provider.core.io.datasets import dataset_files_under

        prefix = self.prefix or data_path(DataFolder.LANDING, "")
        batches = dataset_files_under(prefix, self.storage_hook.get_conn())
        if not batches and context["dag_run"].run_type == "manual":
            raise AirflowSkipException(f"Triggered by hand, and no batch is in {prefix}: nothing to ingest")
        self.log.info("%d batch(es) in %s", len(batches), prefix)
        return PokeReturnValue(is_done=bool(batches), xcom_value=batches)


class FeatureFreshnessSensor(ConnectionsMixin, BaseSensorOperator):
    """Wait until a feature view's offline data reaches ``up_to`` (its newest event timestamp, read cheaply
    from parquet footers).

    The view's source is looked up in the Feast registry once; then the data is checked right away, and
    if it is not fresh yet the task defers to :class:`FeatureFreshnessTrigger`, which polls without a
    worker slot (or, with ``deferrable=False``, pokes like a classic sensor). Returns a
    :class:`~airflow_mlops_provider.contracts.FreshnessResult`.

    :param feature_view: the feature view to watch.
    :param up_to: the time the data must reach (templated), e.g. ``{{ data_interval_end }}``; naive is UTC.
    :param deferrable: wait in the triggerer (default) instead of a worker slot.
    :param feast_conn_id: the ``feast`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` sources; the default falls back to the
        environment when it does not exist, ``None`` always takes the environment.
    """

    template_fields: Sequence[str] = ("up_to",)

    def __init__(
        self,
        *,
        feature_view: str,
        up_to: str = "{{ data_interval_end }}",
        deferrable: bool = True,
        feast_conn_id: str = FeastHook.default_conn_name,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.feature_view = feature_view
        self.up_to = up_to
        self.deferrable = deferrable
        self._set_connections(storage_conn_id=storage_conn_id, feast_conn_id=feast_conn_id)

    def _trigger(self) -> FeatureFreshnessTrigger:
        """The trigger for this view's source, which is looked up in the Feast registry."""
        require_extra("feast")
        from airflow_mlops_provider.core.features.batches import to_utc
        from airflow_mlops_provider.core.features.feast_repo import feature_view

        view = feature_view(self.feast_hook.get_conn(), self.feature_view)
        return FeatureFreshnessTrigger(
            source_uri=view.source_uri,
            timestamp_field=view.timestamp_field,
            target=to_utc(str(self.up_to)).isoformat(),
            poll_interval=self.poke_interval,
            storage_conn_id=self.storage_conn_id,
        )

    def execute(self, context: Context) -> Any:
        """Return at once when the data is fresh; otherwise defer (or poke, when not deferrable)."""
        if not self.deferrable:
            return super().execute(context)
        trigger = self._trigger()
        latest = trigger.latest()
        if trigger.is_fresh(latest):
            return FreshnessResult(feature_view=self.feature_view, latest=latest.isoformat(), target=trigger.target)
        self.log.info("%s has data up to %s; deferring until %s", self.feature_view, latest, trigger.target)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> bool:
        """Tell whether the data reaches ``up_to`` (the non-deferrable path)."""
        trigger = self._trigger()
        latest = trigger.latest()
        self.log.info("%s has data up to %s; waiting for %s", self.feature_view, latest, trigger.target)
        return trigger.is_fresh(latest)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> FreshnessResult:
        """Resume after the trigger fired: fail on an error event, else return the freshness.

        :param context: the task's context.
        :param event: the trigger's payload.
        """
        if event.get("status") != "success":
            raise AirflowException(f"Waiting for {self.feature_view} failed: {event.get('message', event)}")
        return FreshnessResult(feature_view=self.feature_view, latest=event["latest"], target=event["target"])
