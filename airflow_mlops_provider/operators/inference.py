"""Batch inference: score entities with the champion, chunk by chunk, into one predictions file per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import DataFolder, data_path, safe_segment
from airflow_mlops_provider.contracts import CHAMPION, InferenceResult, Unscorable
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.operators.base import MlopsBaseOperator

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    from airflow.sdk import Context

    from airflow_mlops_provider.core.inference.batch import FeatureLookup
    from airflow_mlops_provider.core.inference.model import PinnedModel

#: The default number of rows read, looked up and scored at a time.
CHUNK_ROWS = 50_000


class BatchInferenceOperator(MlopsBaseOperator):
    """Score entities with the version ``model_alias`` points at, into a parquet file of predictions.

    The alias is resolved once, at the start, and ``models:/<model_name>/<version>`` is loaded: a promotion
    during the run cannot mix two versions, and the next run uses the new champion. The model's features are
    those its training run recorded (its ``numeric_features`` and ``categorical_features`` params).

    The rows to score are either entity rows (``entities_uri``: entity keys and an event time; other columns,
    e.g. a label, are ignored) whose features come from the Feast online store through ``feature_service``,
    or rows that already hold the features (``features_uri``, offline scoring). Either is a parquet/CSV file
    or a ``/``-terminated directory of them, local or ``s3://``; rows outside ``[window_start, window_end)``
    are left out. They are read, looked up and scored ``chunk_rows`` at a time, and appended to a temporary
    file that is put at ``predictions_uri`` only when every row is done: a failed run writes nothing, and a
    retry of the run overwrites its own file.

    The file holds the entity keys, the event time, ``prediction``, ``model_version`` and ``scored_at``
    (:class:`~airflow_mlops_provider.contracts.PredictionColumn`). A row missing a feature (an entity the
    online store does not know, a null value) is unscorable: ``unscorable="drop"`` leaves it out and fails
    when more than ``max_unscorable_fraction`` of the rows are; ``"fill"`` scores it with ``fill_values``
    (a value for every feature); ``"fail"`` fails, naming some. Returns an
    :class:`~airflow_mlops_provider.contracts.InferenceResult`; each Asset outlet's event carries
    ``{model_name, version, rows, predictions_uri}``. No row to score skips the task (no event).

    :param model_name: the registered model (templated).
    :param entities_uri: entity rows to score with online features (templated).
    :param features_uri: rows that hold the features (templated); give it or ``entities_uri``.
    :param feature_service: the Feast feature service serving the model's features (templated); needed
        with ``entities_uri``.
    :param entity_columns: the entity key columns; by default the feature service's join keys (needed
        with ``features_uri``).
    :param timestamp_column: the event time column.
    :param window_start: score rows at or after this time (templated); empty: no bound.
    :param window_end: score rows before this time (templated); empty: no bound.
    :param predictions_uri: where to write (templated); by default
        ``[mlops] data_dir``/predictions/<model>/<run id>.parquet.
    :param model_alias: the alias to resolve.
    :param unscorable: ``drop``, ``fill`` or ``fail`` (:class:`~airflow_mlops_provider.contracts.Unscorable`).
    :param max_unscorable_fraction: under ``drop``, the largest tolerated fraction of unscorable rows.
    :param fill_values: under ``fill``, feature -> value, covering every feature of the model.
    :param chunk_rows: rows read, looked up and scored at a time.
    :param skip_without_version: skip the task, instead of failing it, while ``model_alias`` points at no
        version (a new deployment before its first promotion).
    """

    template_fields: Sequence[str] = (
        "model_name", "entities_uri", "features_uri", "feature_service", "window_start", "window_end",
        "predictions_uri",
    )  # fmt: skip
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        entities_uri: str | None = None,
        features_uri: str | None = None,
        feature_service: str | None = None,
        entity_columns: Sequence[str] | None = None,
        timestamp_column: str = "event_timestamp",
        window_start: str | None = None,
        window_end: str | None = None,
        predictions_uri: str | None = None,
        model_alias: str = CHAMPION,
        unscorable: str = Unscorable.DROP,
        max_unscorable_fraction: float = 0.05,
        fill_values: Mapping[str, Any] | None = None,
        chunk_rows: int = CHUNK_ROWS,
        skip_without_version: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_mlops_provider.core.inference.policy import UnscorablePolicy

        if (entities_uri is None) == (features_uri is None):
            raise ValueError(
                "BatchInferenceOperator needs one of entities_uri (online features) or features_uri, not both"
            )
        if entities_uri is not None and not feature_service:
            raise ValueError("BatchInferenceOperator needs feature_service to look up the features of entities_uri")
        if features_uri is not None and not entity_columns:
            raise ValueError("BatchInferenceOperator needs entity_columns with features_uri")
        if not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.policy = UnscorablePolicy(unscorable, max_unscorable_fraction, dict(fill_values or {}))
        self.model_name = model_name
        self.entities_uri = entities_uri
        self.features_uri = features_uri
        self.feature_service = feature_service
        self.entity_columns = list(entity_columns) if entity_columns else None
        self.timestamp_column = timestamp_column
        self.window_start = window_start
        self.window_end = window_end
        self.predictions_uri = predictions_uri
        self.model_alias = model_alias
        self.unscorable = unscorable
        self.max_unscorable_fraction = max_unscorable_fraction
        self.fill_values = dict(fill_values or {})
        self.chunk_rows = chunk_rows
        self.skip_without_version = skip_without_version

    def execute(self, context: Context) -> InferenceResult:
        """Pin the version, score every chunk, commit the file, emit the event, return the result."""
        require_extra("trainer")
        from airflow_mlops_provider.core.inference.batch import score_batches
        from airflow_mlops_provider.core.inference.model import load_pinned, resolve_version
        from airflow_mlops_provider.core.inference.policy import UnscorableError
        from airflow_mlops_provider.core.inference.predictions import PredictionsWriter, prediction_statistics
        from airflow_mlops_provider.core.models.lineage import AliasNotSetError

        scored_at = datetime.now(timezone.utc).isoformat()
        client = self._client()
        try:
            version = resolve_version(client, self.model_name, self.model_alias)
        except AliasNotSetError as err:
            if self.skip_without_version:
                raise AirflowSkipException(f"No model to score with yet: {err}") from err
            raise AirflowFailException(f"No model to score with: {err}") from err
        self.log.info("Scoring with %s version %s (%s at %s)", self.model_name, version, self.model_alias, scored_at)
        MlflowModelVersionLink.persist(context, self.mlflow_hook.model_version_url(self.model_name, version))
        try:
            pinned = load_pinned(client, self.model_name, version)
            self.policy.check_features(pinned.inputs.features)
        except ValueError as err:
            raise AirflowFailException(f"Cannot score with {self.model_name} version {version}: {err}") from err
        storage = self.storage_hook.get_conn()
        uri = self.predictions_uri or data_path(
            DataFolder.PREDICTIONS, safe_segment(self.model_name), f"{safe_segment(context['ti'].run_id)}.parquet"
        )
        source = self.entities_uri or self.features_uri
        try:
            keys, chunks, lookup = self._rows(pinned, storage)
            with PredictionsWriter(uri, storage) as writer:
                totals = score_batches(
                    chunks, pinned.model, pinned.inputs, self.policy, keys, self.timestamp_column, writer,
                    version, scored_at, lookup,
                )  # fmt: skip
                if totals.rows == 0:
                    raise AirflowSkipException(f"Nothing to score: no rows of {source} in the window")
                writer.commit()
        except UnscorableError as err:
            raise AirflowFailException(f"No predictions written to {uri}: {err}") from err
        except (LookupError, ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot score {source}: {err}") from err
        if totals.unscorable:
            self.log.warning(
                "%d of %d rows were unscorable (%s), e.g. %s",
                totals.unscorable, totals.rows, self.policy.action, "; ".join(totals.examples),
            )  # fmt: skip
        self.log.info(
            "Wrote %d predictions of %s version %s to %s (%d rows in %d chunks, %d unscorable, policy %s)",
            totals.scored, self.model_name, version, uri, totals.rows, totals.chunks, totals.unscorable,
            self.policy.action,
        )  # fmt: skip
        result = InferenceResult(
            model_name=self.model_name,
            version=version,
            predictions_uri=uri,
            rows=totals.rows,
            scored=totals.scored,
            unscorable=totals.unscorable,
            unscorable_policy=self.policy.action,
            statistics=prediction_statistics(totals.predictions, pinned.inputs.problem_type),
            scored_at=scored_at,
        )
        extra = {"model_name": self.model_name, "version": version, "rows": totals.scored, "predictions_uri": uri}
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = cast("dict[str, Any]", extra)
        return result

    def _client(self) -> Any:
        """The MLflow client; a connection that cannot name a server fails without retry."""
        try:
            return self.mlflow_hook.get_conn()
        except ValueError as err:
            raise AirflowFailException(str(err)) from err

    def _rows(
        self, pinned: PinnedModel, storage: Any
    ) -> tuple[list[str], Iterator[pd.DataFrame], FeatureLookup | None]:
        """The key columns, the chunks in the window, and how features are added to them (``None``: they
        hold them).

        :param pinned: the model (its features must be served, or be in the rows).
        :param storage: the object store to read through.
        """
        from airflow_mlops_provider.core.features.point_in_time import parse_window
        from airflow_mlops_provider.core.inference.sources import online_features, read_chunks, rows_in_window

        window = parse_window(self.window_start or None, self.window_end or None)
        features = list(pinned.inputs.features)
        if self.features_uri:
            keys = list(self.entity_columns or [])
            columns = list(dict.fromkeys([*keys, self.timestamp_column, *features]))
            chunks = read_chunks(self.features_uri, columns, self.chunk_rows, storage)
            return keys, (rows_in_window(c, keys, self.timestamp_column, window) for c in chunks), None
        if not self.entities_uri:
            raise ValueError("entities_uri and features_uri both rendered empty")
        require_extra("feast")
        from airflow_mlops_provider.core.features.feast_repo import feature_service

        store = self.feast_hook.get_conn()
        service_name = str(self.feature_service)
        entities, service = feature_service(store, service_name)
        served = {name for view in service.features.values() for name in view}
        unserved = [name for name in features if name not in served]
        if unserved:
            raise ValueError(
                f"feature service {service_name!r} does not serve the model's features {unserved} "
                f"(it serves {sorted(served)})"
            )
        keys = list(self.entity_columns or entities)
        chunks = read_chunks(self.entities_uri, [*keys, self.timestamp_column], self.chunk_rows, storage)

        def lookup(rows: pd.DataFrame) -> pd.DataFrame:
            return online_features(store, service_name, rows, keys)

        return keys, (rows_in_window(c, keys, self.timestamp_column, window) for c in chunks), lookup
