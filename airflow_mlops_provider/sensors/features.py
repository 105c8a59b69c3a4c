"""Sensor that waits until a feature view has data up to a given time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.triggers.features import FeatureFreshnessTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class FeatureFreshnessSensor(BaseSensorOperator):
    """Wait until a feature view's offline data reaches ``up_to`` (its newest event timestamp, read cheaply
    from parquet footers).

    The view's source is looked up in the Feast registry once; then the data is checked right away, and
    if it is not fresh yet the task defers to :class:`FeatureFreshnessTrigger`, which polls without a
    worker slot (or, with ``deferrable=False``, pokes like a classic sensor). Returns
    ``{feature_view, latest, target}``.

    :param feature_view: the feature view to watch.
    :param up_to: the time the data must reach (templated), e.g. ``{{ data_interval_end }}``; naive is UTC.
    :param deferrable: wait in the triggerer (default) instead of a worker slot.
    :param feast_conn_id: the ``feast`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` sources.
    """

    template_fields: Sequence[str] = ("up_to",)

    def __init__(
        self,
        *,
        feature_view: str,
        up_to: str = "{{ data_interval_end }}",
        deferrable: bool = True,
        feast_conn_id: str = FeastHook.default_conn_name,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.feature_view = feature_view
        self.up_to = up_to
        self.deferrable = deferrable
        self.feast_conn_id = feast_conn_id
        self.storage_conn_id = storage_conn_id

    def _trigger(self) -> FeatureFreshnessTrigger:
        """The trigger for this view's source, which is looked up in the Feast registry."""
        require_extra("feast")
        from airflow_mlops_provider.core.features.batches import to_utc
        from airflow_mlops_provider.core.features.feast_repo import feature_view

        view = feature_view(FeastHook(self.feast_conn_id).get_conn(), self.feature_view)
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
            return {"feature_view": self.feature_view, "latest": latest.isoformat(), "target": trigger.target}
        self.log.info("%s has data up to %s; deferring until %s", self.feature_view, latest, trigger.target)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> bool:
        """Tell whether the data reaches ``up_to`` (the non-deferrable path)."""
        trigger = self._trigger()
        latest = trigger.latest()
        self.log.info("%s has data up to %s; waiting for %s", self.feature_view, latest, trigger.target)
        return trigger.is_fresh(latest)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: fail on an error event, else return the freshness.

        :param context: the task's context.
        :param event: the trigger's payload.
        """
        if event.get("status") != "success":
            raise AirflowException(f"Waiting for {self.feature_view} failed: {event.get('message', event)}")
        return {"feature_view": self.feature_view, "latest": event["latest"], "target": event["target"]}
