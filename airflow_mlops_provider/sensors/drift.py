"""DriftSensor: wait until current data drifts away from the champion's training set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.triggers.drift import DriftTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftSensor(BaseSensorOperator):
    """Succeed when a drift episode starts, returning its summary (see :class:`DriftTrigger`).

    Deferrable by default: the wait runs in the triggerer, polling every ``poke_interval`` seconds. With
    ``deferrable=False`` the same check runs in the worker at each poke. With a ``state_uri``, an episode
    already reported (by this sensor or a watcher sharing the state) does not end the wait again.

    :param current_uri: the current data (templated).
    :param model_name: the registered model whose champion's training set is the reference (templated).
    :param reference_uri: a fixed reference dataset instead (templated).
    :param time_column: the current data's event-time column.
    :param lookback_seconds: check only rows newer than the newest row minus this.
    :param columns: the columns to compare (templated); by default the model's features.
    :param drift_config: :class:`~airflow_mlops_provider.core.drift.compute.DriftConfig` fields (templated).
    :param state_uri: where the episode state lives (templated); ``None``: this wait only.
    :param report_prefix: where Evidently's report of the drifted window goes (templated).
    :param deferrable: wait in the triggerer rather than in a worker slot.
    :param mlflow_conn_id: the ``mlflow`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection; ``None`` uses the environment.
    :param trigger_options: further :class:`DriftTrigger` arguments (e.g. ``debounce``, ``cooldown_seconds``).
    """

    template_fields: Sequence[str] = ("trigger_kwargs",)
    operator_extra_links = (DriftReportLink(),)

    def __init__(
        self,
        *,
        current_uri: str,
        model_name: str | None = None,
        reference_uri: str | None = None,
        time_column: str | None = None,
        lookback_seconds: float | None = None,
        columns: Sequence[str] = (),
        drift_config: dict[str, Any] | None = None,
        state_uri: str | None = None,
        report_prefix: str | None = None,
        deferrable: bool = True,
        poke_interval: float = 300.0,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = None,
        trigger_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.deferrable = deferrable
        self.storage_conn_id = storage_conn_id
        self.trigger_kwargs: dict[str, Any] = {
            "current_uri": current_uri,
            "model_name": model_name,
            "reference_uri": reference_uri,
            "time_column": time_column,
            "lookback_seconds": lookback_seconds,
            "columns": list(columns),
            "drift_config": drift_config,
            "state_uri": state_uri,
            "report_prefix": report_prefix,
            "mlflow_conn_id": mlflow_conn_id,
            "storage_conn_id": storage_conn_id,
            **(trigger_options or {}),
        }
        self._poller: DriftTrigger | None = None

    def trigger(self) -> DriftTrigger:
        """The trigger this sensor waits on."""
        return DriftTrigger(**self.trigger_kwargs, poll_interval=self.poke_interval)

    def execute(self, context: Context) -> Any:
        """Defer to :class:`DriftTrigger`, or poke in the worker when not deferrable."""
        if not self.deferrable:
            return super().execute(context)
        self.defer(trigger=self.trigger(), method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> PokeReturnValue:
        """Run one check in the worker (the episode state is kept across pokes)."""
        if self._poller is None:
            self._poller = self.trigger()
        payload = self._poller.poll()
        if payload is None:
            return PokeReturnValue(False)
        return PokeReturnValue(True, self._finish(context, payload))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: link the report and return the drift summary.

        :param context: the task's context.
        :param event: the trigger's payload.
        """
        return self._finish(context, event)

    def _finish(self, context: Context, summary: dict[str, Any]) -> dict[str, Any]:
        from airflow_mlops_provider.core.io.urls import object_url

        self.log.info("Drift in %s: columns %s", summary["current_uri"], summary["drifted_columns"])
        if summary.get("report_uri"):
            config = ObjectStorageHook(self.storage_conn_id).get_config()
            DriftReportLink.persist(context, object_url(summary["report_uri"], config))
        return summary
