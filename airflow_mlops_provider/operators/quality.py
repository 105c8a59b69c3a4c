"""ModelQualityOperator: the champion's live quality from delayed labels, and a decay event once per episode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import QUALITY_EVENT_KEYS, QualityResult
from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.operators.base import MlopsBaseOperator
from airflow_mlops_provider.operators.signals import ConditionalAssetEvent, task_claimant

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

    from airflow_mlops_provider.core.quality.champion import Champion
    from airflow_mlops_provider.core.quality.pipeline import QualitySpec
    from airflow_mlops_provider.core.quality.policy import QualityPolicy


class ModelQualityOperator(MlopsBaseOperator):
    """Join the model's predictions with the labels that arrived since, per window, and signal decay.

    Each prediction (a batch-inference file: entity columns, event time, ``prediction``, ``model_version``)
    is matched with its label on the entity and the event time. Per version and window of event time
    (aligned: ``window="1D"`` is each UTC day), the live metric, the predictions, the labels joined and the
    label coverage are (re)computed: late labels update their window, in place. The series, one row per
    (version, window), is stored at ``series_uri`` (the source of truth), and each new or changed window is
    logged on its version's MLflow run as ``live_<metric>``, ``live_label_coverage``, ``live_labels`` and
    ``live_predictions`` (step: the window's index since the epoch), so the MLflow UI charts it.

    The ``champion``'s newest window with at least ``min_labels`` labels is judged: below ``min_value``, or
    more than ``max_drop`` under the version's holdout score recorded at promotion (the ``mlops.promotion``
    record), it has decayed. Decay emits one event of ``decay_asset`` per episode (``episode_policy``:
    debounce, ``clear_after`` good windows end it, cooldown; state at ``state_uri``), with the model, version,
    metric, value, floor and window in its extra, through an ``AssetAlias`` outlet; a retry of the task
    that fired fires again. No champion, no predictions, or a bad policy fail the task before anything is
    written.

    :param model_name: the registered model (templated).
    :param entity_columns: the entity key joining predictions and labels (templated).
    :param predictions_uri: the predictions, a file or ``/``-terminated prefix (templated); by default
        ``<data_dir>/predictions/<model>/``.
    :param labels_uri: the labels, a file or prefix of parquet/CSV files (templated); by default the
        ingested raw batches, ``<data_dir>/ingested/``.
    :param label_column: the label column (templated); by default the champion run's target.
    :param time_column: the event time, in both (templated).
    :param window: the window length: ``"1D"``, ``"6h"`` or seconds (templated).
    :param lookback: recompute only the windows of the last ``lookback`` (e.g. ``"30D"``); by default all.
    :param metric: the live metric, one of the problem type's (templated).
    :param direction: ``maximize`` or ``minimize``; by default the metric's.
    :param min_value: the floor (templated); ``None`` for none.
    :param max_drop: the allowed drop from the holdout score (templated); ``None`` for none.
    :param min_labels: labels a window needs for a verdict (templated).
    :param series_uri: the series (templated); by default ``<data_dir>/quality/<model>/series.parquet``.
    :param state_uri: the episode state (templated); by default ``<data_dir>/quality/<model>/episodes.json``.
    :param episode_policy: debounce, clear_after, cooldown and cap of decay events.
    :param decay_asset: the asset that receives the decay event.
    :param log_to_mlflow: log the windows as MLflow metrics.
    :param kwargs: the connection ids of :class:`~airflow_mlops_provider.operators.base.MlopsBaseOperator`,
        and ``BaseOperator``'s arguments.
    """

    template_fields: Sequence[str] = (
        "model_name", "entity_columns", "predictions_uri", "labels_uri", "label_column", "time_column", "window",
        "lookback", "metric", "min_value", "max_drop", "min_labels", "series_uri", "state_uri",
    )  # fmt: skip
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        entity_columns: Sequence[str],
        predictions_uri: str | None = None,
        labels_uri: str | None = None,
        label_column: str | None = None,
        time_column: str = "event_timestamp",
        window: str = "1D",
        lookback: str | None = None,
        metric: str = "roc_auc",
        direction: str | None = None,
        min_value: float | str | None = None,
        max_drop: float | str | None = None,
        min_labels: int | str = 30,
        series_uri: str | None = None,
        state_uri: str | None = None,
        episode_policy: EpisodePolicy | None = None,
        decay_asset: Asset | None = None,
        log_to_mlflow: bool = True,
        **kwargs: Any,
    ) -> None:
        if isinstance(entity_columns, str):
            entity_columns = [entity_columns]
        self.decay_event = None if decay_asset is None else ConditionalAssetEvent(decay_asset, "on_decay")
        if self.decay_event is not None:
            kwargs = self.decay_event.with_outlet(kwargs)
        super().__init__(**kwargs)
        self.model_name = model_name
        self.entity_columns = list(entity_columns)
        self.predictions_uri = predictions_uri
        self.labels_uri = labels_uri
        self.label_column = label_column
        self.time_column = time_column
        self.window = window
        self.lookback = lookback
        self.metric = metric
        self.direction = direction
        self.min_value = min_value
        self.max_drop = max_drop
        self.min_labels = min_labels
        self.series_uri = series_uri
        self.state_uri = state_uri
        self.episode_policy = episode_policy or EpisodePolicy()
        self.decay_asset = decay_asset
        self.log_to_mlflow = log_to_mlflow

    def execute(self, context: Context) -> QualityResult:
        """Find the champion, check the policy, recompute and store the series, and emit decay if due."""
        require_extra("trainer")
        from airflow_mlops_provider.core.models.lineage import AliasNotSetError
        from airflow_mlops_provider.core.quality.champion import find_champion
        from airflow_mlops_provider.core.quality.pipeline import NoPredictionsError, run_quality_check

        client = self.mlflow_hook.get_conn()
        try:
            champion = find_champion(client, self.model_name)
        except AliasNotSetError as err:
            raise AirflowFailException(
                f"Cannot judge the live quality of {self.model_name!r}: {err} (promote a version first)"
            ) from err
        MlflowModelVersionLink.persist(context, self.mlflow_hook.model_version_url(self.model_name, champion.version))
        policy, spec = self._policy(champion), self._spec(champion)
        try:
            outcome = run_quality_check(
                spec,
                policy,
                champion,
                self.storage_hook.get_conn(),
                client if self.log_to_mlflow else None,
                claimant=task_claimant(context),
            )
        except (NoPredictionsError, ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot judge the live quality of {self.model_name!r}: {err}") from err
        result = outcome.result
        self.log.info("%s; %s", result["reason"], result["episode"])
        if outcome.fired and self.decay_event is not None:
            self.decay_event.emit(context, {key: result.get(key) for key in QUALITY_EVENT_KEYS})
        return result

    def _policy(self, champion: Champion) -> QualityPolicy:
        from airflow_mlops_provider.core.quality.policy import QualityPolicy

        try:
            return QualityPolicy.parse(
                str(self.metric), self.direction, self.min_value, self.max_drop, self.min_labels, champion.problem_type
            )
        except ValueError as err:
            raise AirflowFailException(f"Bad quality policy for {self.model_name!r}: {err}") from err

    def _spec(self, champion: Champion) -> QualitySpec:
        from airflow_mlops_provider.core.quality.pipeline import QualitySpec

        label_column = self.label_column or champion.target
        if not label_column:
            raise AirflowFailException(
                f"Version {champion.version} of {self.model_name!r} records no target: set label_column"
            )
        try:
            return QualitySpec(
                model_name=self.model_name,
                predictions_uri=self.predictions_uri or data_path(DataFolder.PREDICTIONS, self.model_name, ""),
                labels_uri=self.labels_uri or data_path(DataFolder.INGESTED, ""),
                label_column=label_column,
                entity_columns=tuple(self.entity_columns),
                time_column=self.time_column,
                window=str(self.window),
                lookback=str(self.lookback) if self.lookback else None,
                series_uri=self.series_uri or data_path(DataFolder.QUALITY, self.model_name, "series.parquet"),
                state_uri=self.state_uri or data_path(DataFolder.QUALITY, self.model_name, "episodes.json"),
                episode_policy=self.episode_policy,
            )
        except ValueError as err:
            raise AirflowFailException(f"Bad quality check of {self.model_name!r}: {err}") from err
