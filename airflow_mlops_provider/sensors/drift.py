"""DriftSensor: wait until current data drifts away from the champion's training set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_mlops_provider.core.drift.episodes import EpisodeStateFile
from airflow_mlops_provider.hooks.connections import ConnectionsMixin
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.triggers.drift import DriftTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlops_provider.contracts import DriftSummary
    from airflow_mlops_provider.core.drift.spec import DriftCheckSpec


class DriftSensor(ConnectionsMixin, BaseSensorOperator):
    """Succeed when a check signals drift (with a ``state_uri``, when a drift episode starts), returning its
    summary and linking its report.

    Deferrable by default: :class:`~airflow_mlops_provider.triggers.drift.DriftTrigger` waits in the
    triggerer, polling every ``poke_interval`` seconds. With ``deferrable=False`` each poke runs the same
    check, :func:`~airflow_mlops_provider.core.drift.pipeline.run_drift_check`, in the worker; without a
    ``state_uri`` the episode state is kept across the pokes of one try. With a ``state_uri``, an episode
    already reported (by this sensor or a watcher sharing the state) does not end the wait again.

    :param spec: the check; its URIs, model, columns and window bounds are templated.
    :param deferrable: wait in the triggerer rather than in a worker slot.
    :param poke_interval: seconds between checks.
    :param mlflow_conn_id: the ``mlflow`` connection, for a model's training set as the reference.
    :param storage_conn_id: the ``mlops_s3`` connection; ``None`` uses the environment.
    """

    template_fields: Sequence[str] = ("spec",)
    operator_extra_links = (DriftReportLink(),)

    def __init__(
        self,
        *,
        spec: DriftCheckSpec,
        deferrable: bool = True,
        poke_interval: float = 300.0,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        storage_conn_id: str | None = ObjectStorageHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.spec = spec
        self.deferrable = deferrable
        self._set_connections(mlflow_conn_id, storage_conn_id)

    def execute(self, context: Context) -> Any:
        """Defer to :class:`DriftTrigger`, or poke in the worker when not deferrable."""
        if not self.deferrable:
            return super().execute(context)
        trigger = DriftTrigger(
            spec=self.spec,
            poll_interval=self.poke_interval,
            mlflow_conn_id=self.mlflow_conn_id,
            storage_conn_id=self.storage_conn_id,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> PokeReturnValue:
        """Run one check in the worker."""
        from airflow_mlops_provider.core.drift.pipeline import run_drift_check
        from airflow_mlops_provider.core.drift.spec import NothingToCheckError

        try:
            outcome = run_drift_check(
                replace(self.spec, event_only=True),
                self.storage_hook.get_conn(),
                self.mlflow_hook.get_conn,
                states=self._episode_states,
            )
        except NothingToCheckError as err:
            self.log.info("Nothing to check yet: %s", err)
            return PokeReturnValue(False)
        return PokeReturnValue(outcome.fired, self._finish(context, outcome.summary) if outcome.fired else None)

    def execute_complete(self, context: Context, event: DriftSummary) -> DriftSummary:
        """Resume after the trigger fired: link the report and return the drift summary.

        :param context: the task's context.
        :param event: the trigger's payload, the check's summary.
        """
        return self._finish(context, event)

    @cached_property
    def _episode_states(self) -> EpisodeStateFile:
        """The episode state at the spec's ``state_uri``, else in memory across this object's pokes."""
        return EpisodeStateFile(self.spec.state_uri, self.storage_hook.get_conn())

    def _finish(self, context: Context, summary: DriftSummary) -> DriftSummary:
        self.log.info("Drift in %s: columns %s", summary.get("current_uri"), summary["drifted_columns"])
        if report_uri := summary.get("report_uri"):
            DriftReportLink.persist_report(context, report_uri, self.storage_hook)
        return summary
