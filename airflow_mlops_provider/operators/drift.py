"""DriftCheckOperator: compare a window of current data with the champion's training set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import task_output_path
from airflow_mlops_provider.core.drift.episodes import EpisodePolicy
from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook
from airflow_mlops_provider.links.drift import DriftReportLink

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


class DriftCheckOperator(BaseOperator):
    """Test current data for drift against a reference, store the report, and signal drift.

    The reference is, by default, the training set of the model version aliased ``model_alias``: its
    tags ``mlops.dataset_uri`` and ``mlops.dataset_digest`` (checked), training rows only; or
    ``reference_uri``. The current data is a dataset (features, or batch-inference predictions), or the
    offline data of a Feast ``feature_view``, optionally cut to ``[window_start, window_end)`` on
    ``time_column`` (for a feature view, by default its timestamp field). The task is skipped, with the
    reason, while the model has no ``model_alias`` version yet, the feature view has no data yet, or no
    current row falls in the window.
    The compared columns are ``columns``, else the model's features, else the columns both share minus
    the target, split, time, ids and ``exclude_columns``. Verdicts follow Evidently's tests and defaults
    (see ``drift_config``).

    The JSON summary is always stored under ``report_prefix``; Evidently's HTML and JSON report only when
    the dataset drifted or ``always_report`` is set. The task links to it and returns the summary. When
    the dataset drifted, and only then, an event of ``drift_asset`` is emitted, with the model and the
    drifted columns in its extra: through an ``AssetAlias`` outlet, because a plain ``Asset`` outlet emits
    an event on every successful run. With ``state_uri``, checks share :class:`DriftTrigger`'s episode
    state and ``episode_policy``: one event per drift episode against a reference, and none for a window
    already judged (a daily check of unchanged data, or a second run on the same new data, does not
    retrain again).

    :param current_uri: the current data: a file, or a ``/``-terminated prefix of parquet/CSV files, local
        or ``s3://`` (templated).
    :param feature_view: instead of ``current_uri``, read the offline source of this Feast feature view
        (templated).
    :param model_name: the registered model (templated).
    :param model_alias: the version whose training set is the reference.
    :param reference_uri: an explicit reference dataset instead (templated).
    :param split_value: the reference rows to keep by split column; ``None`` keeps all.
    :param time_column: the current data's event-time column.
    :param window_start: inclusive start of the current window (templated, e.g. ``{{ data_interval_start }}``).
    :param window_end: exclusive end of the current window (templated).
    :param columns: the columns to compare (templated).
    :param exclude_columns: columns never compared.
    :param drift_config: :class:`~airflow_mlops_provider.core.drift.compute.DriftConfig` fields, e.g.
        ``{"num_method": "ks", "drift_share": 0.3}`` (templated; numbers may be strings).
    :param report_prefix: where the report goes (templated); by default
        ``<[mlops] data_dir>/drift_reports/<dag_id>/<run_id>/<task_id>``.
    :param always_report: render Evidently's report even without drift.
    :param drift_asset: the asset that receives an event when drift is found.
    :param state_uri: the episode state's JSON document, local or ``s3://`` (templated); ``None``: every
        drifted check emits.
    :param episode_policy: debounce, cooldown and cap of events with ``state_uri``; by default one event
        per episode. A cooldown spaces out retrainings while a retrained champion's (temporally split)
        training rows still predate the shift: a new champion starts a new episode.
    :param mlflow_conn_id: the ``mlflow`` connection.
    :param feast_conn_id: the ``feast`` connection, for ``feature_view``.
    :param storage_conn_id: the ``mlops_s3`` connection; ``None`` uses the environment.
    """

    template_fields: Sequence[str] = (
        "current_uri", "feature_view", "model_name", "reference_uri", "window_start", "window_end", "columns",
        "drift_config", "report_prefix", "state_uri",
    )  # fmt: skip
    operator_extra_links = (DriftReportLink(),)

    def __init__(
        self,
        *,
        current_uri: str | None = None,
        feature_view: str | None = None,
        model_name: str | None = None,
        model_alias: str = "champion",
        reference_uri: str | None = None,
        split_value: str | None = "train",
        time_column: str | None = None,
        window_start: str | None = None,
        window_end: str | None = None,
        columns: Sequence[str] = (),
        exclude_columns: Sequence[str] = (),
        drift_config: dict[str, Any] | None = None,
        report_prefix: str | None = None,
        always_report: bool = False,
        drift_asset: Asset | None = None,
        state_uri: str | None = None,
        episode_policy: EpisodePolicy | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        feast_conn_id: str = FeastHook.default_conn_name,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not (reference_uri or model_name):
            raise ValueError("DriftCheckOperator needs reference_uri or model_name")
        if not (current_uri or feature_view):
            raise ValueError("DriftCheckOperator needs current_uri or feature_view")
        self.drift_asset = drift_asset
        self.drift_alias = None if drift_asset is None else AssetAlias(name=f"{drift_asset.name}__on_drift")
        if self.drift_alias is not None:
            kwargs["outlets"] = [*kwargs.get("outlets", []), self.drift_alias]
        super().__init__(**kwargs)
        self.current_uri = current_uri
        self.feature_view = feature_view
        self.model_name = model_name
        self.model_alias = model_alias
        self.reference_uri = reference_uri
        self.split_value = split_value
        self.time_column = time_column
        self.window_start = window_start
        self.window_end = window_end
        self.columns = columns
        self.exclude_columns = exclude_columns
        self.drift_config = drift_config
        self.report_prefix = report_prefix
        self.always_report = always_report
        self.state_uri = state_uri
        self.episode_policy = episode_policy or EpisodePolicy()
        self.mlflow_conn_id = mlflow_conn_id
        self.feast_conn_id = feast_conn_id
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Compare, store the report, link it, emit the drift event if drifted, and return the summary."""
        require_extra("evidently")
        from airflow_mlops_provider.core.drift.check import (
            EmptyWindowError,
            compare,
            drift_summary,
            load_window,
        )
        from airflow_mlops_provider.core.drift.compute import DriftConfig
        from airflow_mlops_provider.core.drift.episodes import EpisodeStateFile
        from airflow_mlops_provider.core.drift.report import render_report, store_report
        from airflow_mlops_provider.core.io.datasets import dataset_digest
        from airflow_mlops_provider.core.io.urls import object_url
        from airflow_mlops_provider.core.models.lineage import AliasNotSetError, reference_set

        storage = ObjectStorageHook(self.storage_conn_id)
        store = storage.get_conn()
        current_uri, time_column = self._current_source()
        try:
            config = DriftConfig.from_dict(self.drift_config)
            reference = reference_set(
                self.reference_uri, self.model_name, self.model_alias, self.mlflow_conn_id, self.split_value
            )
            try:
                current = load_window(current_uri, store, time_column, self.window_start, self.window_end)
            except FileNotFoundError as err:
                if self.current_uri:  # a dataset that should be there
                    raise
                raise EmptyWindowError(f"feature view {self.feature_view!r} has no data yet: {err}") from err
            reference_frame = reference.load(store)
            exclude = [time_column, *self.exclude_columns]
            result = compare(reference, reference_frame, current, config, self.columns, exclude)
        except (AliasNotSetError, EmptyWindowError) as err:
            raise AirflowSkipException(f"Nothing to check: {err}") from err
        except (LookupError, ValueError, TypeError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot check drift of {current_uri}: {err}") from err
        window = dataset_digest(current)
        summary = drift_summary(reference, current_uri, window, result)
        self.log.info(
            "%d/%d columns drifted (%s); dataset drift: %s",
            len(result.drifted_columns), len(result.columns), result.drifted_columns, result.dataset_drift,
        )  # fmt: skip
        rendered = None
        if result.dataset_drift or self.always_report:
            rendered = render_report(reference_frame, current, result, config)
        prefix = self.report_prefix or task_output_path(context, "drift_reports")
        stored = store_report(store, prefix, summary, rendered)
        summary["report_uri"] = stored.main_uri
        DriftReportLink.persist(context, object_url(stored.main_uri, storage.get_config()))
        signal = result.dataset_drift
        if self.state_uri:
            states = EpisodeStateFile(self.state_uri, store)
            state = states.load()
            decision = state.observe(self.episode_policy, reference.key, window, result.dataset_drift, time.time())
            self.log.info("Episode: %s", decision.reason)
            signal, summary["episode"] = decision.fire, decision.reason
            states.save(state)
        if signal and self.drift_asset is not None and self.drift_alias is not None:
            extra = {key: summary[key] for key in ("model_name", "model_version", "drifted_columns", "share")}
            context["outlet_events"][self.drift_alias].add(
                self.drift_asset, extra=extra | {"report_uri": stored.main_uri}
            )
        return summary

    def _current_source(self) -> tuple[str, str | None]:
        """The current data's URI and time column: ``current_uri``, or the feature view's offline source."""
        if self.current_uri:
            return self.current_uri, self.time_column
        if not self.feature_view:
            raise AirflowFailException("No current data: set current_uri or feature_view")
        require_extra("feast")
        from airflow_mlops_provider.core.features.feast_repo import feature_view

        try:
            view = feature_view(FeastHook(self.feast_conn_id).get_conn(), self.feature_view)
        except (LookupError, ValueError) as err:
            raise AirflowFailException(f"Cannot read feature view {self.feature_view!r}: {err}") from err
        return f"{view.source_uri.rstrip('/')}/", self.time_column or view.timestamp_field
