"""DriftCheckOperator: compare a window of current data with the champion's training set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import DataFolder, task_output_path
from airflow_mlops_provider.contracts import CHAMPION, DriftSummary, Split, drift_event_extra
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftConfig, DriftWindow, EpisodePolicy
from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.openlineage_facets import (
    OpenLineageMixin,
    drift_lineage,
    feature_view_dataset,
    forwarded_drift_lineage,
)
from airflow_mlops_provider.operators.base import MlopsBaseOperator
from airflow_mlops_provider.operators.signals import ConditionalAssetEvent, task_claimant

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


class DriftCheckOperator(OpenLineageMixin, MlopsBaseOperator):
    """Test current data for drift against a reference, store the report, and signal drift.

    The reference is, by default, the training set of the model version aliased ``model_alias``: its
    lineage tags (dataset URI, and digest, checked), training rows only; or ``reference_uri``. The current
    data is a dataset (features, or batch-inference predictions), or the offline data of a Feast
    ``feature_view``, optionally cut to a ``window`` (for a feature view, on its timestamp field unless
    the window names a time column). The task is skipped, with the reason, while the model has no
    ``model_alias`` version yet, the feature view has no data yet, or no current row falls in the window.
    The compared columns are ``columns``, else the model's features, else the columns both share minus
    the target, split, time, ids and ``exclude_columns``. Verdicts follow Evidently's tests and defaults
    (see ``drift_config``). The check is :func:`~airflow_mlops_provider.core.drift.pipeline.run_drift_check`,
    as for :class:`~airflow_mlops_provider.sensors.drift.DriftSensor` and its trigger.

    The JSON summary is always stored under ``report_prefix``; Evidently's HTML and JSON report only when
    the dataset drifted or ``always_report`` is set. The task links to it and returns the summary. When
    the dataset drifted, and only then, an event of ``drift_asset`` is emitted, with the model and the
    drifted columns in its extra: through an ``AssetAlias`` outlet, because a plain ``Asset`` outlet emits
    an event on every successful run. With ``state_uri``, checks share the trigger's episode state and
    ``episode_policy``: one event per drift episode against a reference, and none for a window already
    judged (a daily check of unchanged data, or a second run on the same new data, does not retrain again).

    :param current_uri: the current data: a file, or a ``/``-terminated prefix of parquet/CSV files, local
        or ``s3://`` (templated).
    :param feature_view: instead of ``current_uri`` (when it is empty), read the offline source of this
        Feast feature view (templated).
    :param model_name: the registered model (templated).
    :param model_alias: the version whose training set is the reference.
    :param reference_uri: an explicit reference dataset instead (templated).
    :param split_value: the reference rows to keep: those its split (the training run's policy, else its split
        column) assigns this value; ``None`` keeps all.
    :param window: the current rows to check; its ``start`` and ``end`` are templated (e.g.
        ``{{ data_interval_start }}``). By default every row.
    :param columns: the columns to compare (templated).
    :param exclude_columns: columns never compared.
    :param drift_config: a :class:`~airflow_mlops_provider.core.drift.spec.DriftConfig`, or its fields,
        e.g. ``{"num_method": "ks", "drift_share": "{{ params.drift_share }}"}`` (templated; numbers may be
        strings).
    :param report_prefix: where the report goes (templated); by default
        ``<[mlops] data_dir>/drift_reports/<dag_id>/<run_id>/<task_id>``.
    :param always_report: render Evidently's report even without drift.
    :param drift_asset: the asset that receives an event when drift is found.
    :param state_uri: the episode state's JSON document, local or ``s3://`` (templated); ``None``: every
        drifted check emits.
    :param episode_policy: debounce, cooldown and cap of events with ``state_uri``; by default one event
        per episode. A cooldown spaces out retrainings while a retrained champion's (temporally split)
        training rows still predate the shift: a new champion starts a new episode.
    :param predictions_uri: the model's batch-inference predictions (templated): their ``prediction``
        column in the window is compared with the champion's predictions on its holdout rows (the summary's
        ``prediction_drift``; its drift is drift). Needs ``model_name``.
    :param kwargs: the connection ids of :class:`~airflow_mlops_provider.operators.base.MlopsBaseOperator`
        (``feast_conn_id`` for ``feature_view``), and ``BaseOperator``'s arguments.
    """

    template_fields: Sequence[str] = (
        "current_uri", "feature_view", "model_name", "reference_uri", "window", "columns", "drift_config",
        "report_prefix", "state_uri", "predictions_uri",
    )  # fmt: skip
    operator_extra_links = (DriftReportLink(),)

    def __init__(
        self,
        *,
        current_uri: str | None = None,
        feature_view: str | None = None,
        model_name: str | None = None,
        model_alias: str = CHAMPION,
        reference_uri: str | None = None,
        split_value: str | None = Split.TRAIN,
        window: DriftWindow | None = None,
        columns: Sequence[str] = (),
        exclude_columns: Sequence[str] = (),
        drift_config: DriftConfig | Mapping[str, Any] | None = None,
        report_prefix: str | None = None,
        always_report: bool = False,
        drift_asset: Asset | None = None,
        state_uri: str | None = None,
        episode_policy: EpisodePolicy | None = None,
        predictions_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not (reference_uri or model_name):
            raise ValueError("DriftCheckOperator needs reference_uri or model_name")
        if not (current_uri or feature_view):
            raise ValueError("DriftCheckOperator needs current_uri or feature_view")
        self.drift_asset = drift_asset
        self.drift_event = None if drift_asset is None else ConditionalAssetEvent(drift_asset, "on_drift")
        self.drift_alias = None if self.drift_event is None else self.drift_event.alias
        if self.drift_event is not None:
            kwargs = self.drift_event.with_outlet(kwargs)
        super().__init__(**kwargs)
        self.current_uri = current_uri
        self.feature_view = feature_view
        self.model_name = model_name
        self.model_alias = model_alias
        self.reference_uri = reference_uri
        self.split_value = split_value
        self.window = window or DriftWindow()
        self.columns = columns
        self.exclude_columns = exclude_columns
        self.drift_config = drift_config
        self.report_prefix = report_prefix
        self.always_report = always_report
        self.state_uri = state_uri
        self.episode_policy = episode_policy or EpisodePolicy()
        self.predictions_uri = predictions_uri

    def execute(self, context: Context) -> DriftSummary:
        """Check, link the report, emit the drift event if due, and return the summary."""
        require_extra("evidently")
        from airflow_mlops_provider.core.drift.pipeline import run_drift_check
        from airflow_mlops_provider.core.drift.spec import NoCurrentDataError, NothingToCheckError

        what = self.current_uri or f"feature view {self.feature_view!r}"
        try:
            spec = self._check_spec(context)
            outcome = run_drift_check(
                spec, self.storage_hook.get_conn(), self.mlflow_hook.get_conn, claimant=task_claimant(context)
            )
        except NoCurrentDataError as err:
            if self.current_uri:  # a dataset that should be there
                raise AirflowFailException(f"Cannot check drift of {what}: {err}") from err
            raise AirflowSkipException(f"Nothing to check: {what} has no data yet: {err}") from err
        except NothingToCheckError as err:
            raise AirflowSkipException(f"Nothing to check: {err}") from err
        except (LookupError, ValueError, TypeError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot check drift of {what}: {err}") from err
        if outcome.report_uri:
            DriftReportLink.persist_report(context, outcome.report_uri, self.storage_hook)
        if outcome.fired and self.drift_event is not None:
            self.drift_event.emit(context, drift_event_extra(outcome.summary))
        tracking_uri = self.mlflow_hook.tracking_uri if outcome.summary.get("model_version") else None
        current = None  # the current data is the summary's current_uri, or the feature view it was read from
        if not self.current_uri:
            current = feature_view_dataset(self.feast_hook.get_conn().project, str(self.feature_view))
        self._openlineage = partial(drift_lineage, outcome.summary, tracking_uri, current)
        return outcome.summary

    def _check_spec(self, context: Context) -> DriftCheckSpec:
        """The check of this task instance, from its rendered fields; a feature view's offline source and
        timestamp field are looked up in the Feast registry (a missing view raises ``LookupError``).

        :param context: the task's context (for the default report prefix).
        """
        current_uri, window = self.current_uri, self.window
        if not (current_uri or self.feature_view):
            raise ValueError("no current data: current_uri and feature_view both rendered empty")
        if not current_uri:
            require_extra("feast")
            from airflow_mlops_provider.core.features.feast_repo import feature_view

            view = feature_view(self.feast_hook.get_conn(), str(self.feature_view))
            current_uri = f"{view.source_uri.rstrip('/')}/"
            window = replace(window, time_column=window.time_column or view.timestamp_field)
        return DriftCheckSpec(
            current_uri=current_uri,
            model_name=self.model_name or None,
            model_alias=self.model_alias,
            reference_uri=self.reference_uri or None,
            split_value=self.split_value,
            window=window,
            columns=self.columns,
            exclude_columns=self.exclude_columns,
            drift_config=DriftConfig.of(self.drift_config),
            state_uri=self.state_uri or None,
            episode_policy=self.episode_policy,
            report_prefix=self.report_prefix or task_output_path(context, DataFolder.DRIFT_REPORTS),
            report_per_window=False,
            always_report=self.always_report,
            predictions_uri=self.predictions_uri or None,
        )


class ForwardDriftEventOperator(OpenLineageMixin, MlopsBaseOperator):
    """Emit ``drift_asset``'s event with the summary of the drift episode that triggered this run.

    The bridge from an ``AssetWatcher`` (a :class:`~airflow_mlops_provider.triggers.drift.DriftTrigger`
    in the triggerer, whose event carries the check's summary as ``payload``) to the drift asset that
    continuous training is scheduled on, with the same extra as :class:`DriftCheckOperator`'s events.
    Skipped, emitting nothing, in a run no event of ``watch_asset`` triggered (e.g. by hand).

    :param watch_asset: the asset whose watcher fired.
    :param drift_asset: the asset to emit.
    """

    def __init__(self, *, watch_asset: Asset, drift_asset: Asset, **kwargs: Any) -> None:
        kwargs["outlets"] = [*kwargs.get("outlets", []), drift_asset]
        super().__init__(**kwargs)
        self.watch_asset = watch_asset
        self.drift_asset = drift_asset

    def execute(self, context: Context) -> DriftSummary:
        """Forward the last triggering event's summary."""
        events = context["triggering_asset_events"][self.watch_asset]
        if not events:
            raise AirflowSkipException(f"No event of {self.watch_asset.name!r} triggered this run: nothing to forward")
        summary: DriftSummary = events[-1].extra.get("payload", {})
        self.log.info("Drift in %s: columns %s", summary.get("current_uri"), summary.get("drifted_columns"))
        context["outlet_events"][self.drift_asset].extra = drift_event_extra(summary)
        self._openlineage = partial(forwarded_drift_lineage, summary)
        return summary
