"""Feature store operators: apply definitions (guarded), ingest batches, archive them, build training sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import TriggerRule
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import DataFolder, data_path, safe_segment
from airflow_mlops_provider.contracts import (
    CHAMPION,
    ArchiveResult,
    BatchesIngestedEvent,
    BatchesIngestedResult,
    BatchIngestedEvent,
    FeastApplyResult,
    FeaturesRefreshedEvent,
    IngestionResult,
    Split,
    Tag,
    TrainingSetResult,
    feature_view_asset,
)
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.openlineage_facets import (
    OpenLineageMixin,
    archive_lineage,
    feast_apply_lineage,
    ingestion_lineage,
    training_set_lineage,
)
from airflow_mlops_provider.operators.base import MlopsBaseOperator

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Asset, Context, XComArg


def merged_lineage(builders: Sequence[Callable[[], OperatorLineage]]) -> OperatorLineage:
    """One task's lineage from the lineage of each item it handled: every input, every distinct output.

    :param builders: one lineage builder per item (a batch, a dataset).
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    parts = [build() for build in builders]
    outputs = {(o.namespace, o.name): o for part in parts for o in part.outputs}
    return OperatorLineage(
        inputs=[i for part in parts for i in part.inputs],
        outputs=list(outputs.values()),
        run_facets=parts[0].run_facets if parts else {},
        job_facets=parts[0].job_facets if parts else {},
    )


class FeastApplyOperator(OpenLineageMixin, MlopsBaseOperator):
    """Apply a feature repo's definitions, like ``feast apply``: CI/CD for feature definitions.

    Objects the repo no longer defines are deleted from the registry. When ``model_name`` is set, the
    version aliased ``champion_alias`` names, in its :attr:`~airflow_mlops_provider.contracts.Tag.FEATURE_SERVICE`
    tag, a feature service that must keep working: a change that removes a view or a feature it serves,
    or changes such a feature's dtype, fails the task before anything is applied. Returns a
    :class:`~airflow_mlops_provider.contracts.FeastApplyResult`.

    :param repo_path: the feature repo directory (templated); by default the ``feast`` connection's ``repo_path``.
    :param model_name: the registered model whose champion's feature service is protected; ``None``: no guard.
    :param champion_alias: the alias of the version in production.
    """

    template_fields: Sequence[str] = ("repo_path", "model_name")

    def __init__(
        self,
        *,
        repo_path: str | None = None,
        model_name: str | None = None,
        champion_alias: str = CHAMPION,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repo_path = repo_path
        self.model_name = model_name
        self.champion_alias = champion_alias

    def execute(self, context: Context) -> FeastApplyResult:
        """Load the repo, check it against the champion's feature service, and apply it."""
        require_extra("feast")
        from airflow_mlops_provider.core.features.feast_repo import (
            apply_repo,
            load_repo,
            registry_definitions,
            repo_definitions,
        )
        from airflow_mlops_provider.core.features.specs import breaking_changes

        store = self.feast_hook.get_conn()
        repo_path = self.repo_path or self.feast_hook.repo_path
        if not repo_path:
            raise AirflowFailException(f"No feature repo: set repo_path, or repo_path in {self.feast_conn_id!r}")
        try:
            repo = load_repo(store, repo_path)
        except Exception as err:
            raise AirflowFailException(f"Cannot load the feature repo {repo_path}: {err}") from err
        protected = self._champion_service()
        if protected:
            problems = breaking_changes(registry_definitions(store), repo_definitions(repo, repo_path), protected)
            if problems:
                raise AirflowFailException(
                    f"Refusing to apply {repo_path}: the {self.champion_alias} of model {self.model_name!r} uses "
                    f"feature service {protected!r}, and this change breaks it:\n- "
                    + "\n- ".join(problems)
                    + "\nAdd new views, features or services next to the old ones instead, and retire the old "
                    "ones once no production model uses them."
                )
            self.log.info("Feature service %r of the %s is unaffected", protected, self.champion_alias)
        apply_repo(store, repo)
        result = FeastApplyResult(
            project=store.project,
            feature_views=sorted(view.name for view in [*repo.feature_views, *repo.on_demand_feature_views]),
            feature_services=sorted(service.name for service in repo.feature_services),
            protected_service=protected,
        )
        self._openlineage = partial(feast_apply_lineage, result)
        return result

    def _champion_service(self) -> str | None:
        """The feature service the champion was trained on, if there is a champion and it says."""
        if not self.model_name:
            return None
        from airflow_mlops_provider.core.models.lineage import aliased_tag

        client = self.mlflow_hook.get_conn()
        version, service = aliased_tag(client, self.model_name, self.champion_alias, Tag.FEATURE_SERVICE)
        if version is None:
            self.log.info("Model %r has no %s yet: nothing to protect", self.model_name, self.champion_alias)
        elif service is None:
            self.log.warning("%s v%s has no %s tag: nothing to protect", self.model_name, version, Tag.FEATURE_SERVICE)
        return service


class FeatureIngestionOperator(OpenLineageMixin, MlopsBaseOperator):
    """Ingest raw batches into a feature view: check each, append it to the offline store, materialize them.

    A batch (parquet or CSV, local or ``s3://``) must hold the view's entity keys (no nulls), its event
    timestamp (time-zone aware, at most ``max_clock_skew`` in the future), every feature with its dtype, and
    one row per (entity keys, timestamp); extra columns are left out. Each is written as one part file named
    by its batch id into the view's directory source, so re-ingesting a batch replaces its part. Then the
    batches are materialized at once: the newest row of each entity they hold goes to the online store unless
    a newer one is there, and their time range, up to the newest data of the view, is recorded in the registry
    as materialized (see :mod:`~airflow_mlops_provider.core.features.online`).

    Given one batch URI, a bad batch fails the task, without retries, before anything is written; the task
    returns an :class:`~airflow_mlops_provider.contracts.IngestionResult`. Given a list, a bad batch is
    refused on its own and the others are ingested; the task returns (or, when it refused one, records
    before failing without retries) a :class:`~airflow_mlops_provider.contracts.BatchesIngestedResult`.
    When :func:`~airflow_mlops_provider.contracts.feature_view_asset` is among the outlets (the default), its
    event carries the batch id and row count (a :class:`~airflow_mlops_provider.contracts.BatchIngestedEvent`),
    or, for a list, each batch's (a :class:`~airflow_mlops_provider.contracts.BatchesIngestedEvent`).

    :param feature_view: the feature view to feed.
    :param batch_uri: the raw batch, or a list of them (templated).
    :param batch_id: the batch's id, for a single batch (templated); by default the file name without its
        suffix, which is always the id of a batch in a list.
    :param max_clock_skew: how far past the current time an event timestamp may be; ``None``: 15 minutes.
    """

    template_fields: Sequence[str] = ("batch_uri", "batch_id")

    def __init__(
        self,
        *,
        feature_view: str,
        batch_uri: str | Sequence[str] | XComArg,
        batch_id: str | None = None,
        max_clock_skew: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [feature_view_asset(feature_view)])
        super().__init__(**kwargs)
        self.feature_view = feature_view
        self.batch_uri = batch_uri
        self.batch_id = batch_id
        self.max_clock_skew = max_clock_skew

    def execute(self, context: Context) -> IngestionResult | BatchesIngestedResult:
        """Check, append and materialize the batches; record the asset event."""
        require_extra("feast")
        from airflow_mlops_provider.core.features.batches import DEFAULT_MAX_CLOCK_SKEW
        from airflow_mlops_provider.core.features.feast_repo import feature_view
        from airflow_mlops_provider.core.features.ingestion import ingest_batches

        single = isinstance(self.batch_uri, str)
        uris = [self.batch_uri] if isinstance(self.batch_uri, str) else list(cast("Sequence[str]", self.batch_uri))
        store = self.feast_hook.get_conn()
        try:
            view = feature_view(store, self.feature_view)
            done = ingest_batches(
                store, view, uris, self.storage_hook.get_conn(),
                [self.batch_id] if single and self.batch_id else None, self.max_clock_skew or DEFAULT_MAX_CLOCK_SKEW,
            )  # fmt: skip
        except (LookupError, ValueError) as err:
            raise AirflowFailException(
                f"{'Batch' if single else 'Batches'} {self.batch_uri} not ingested: {err}"
            ) from err
        if single and done.refused:
            raise AirflowFailException(f"Batch {self.batch_uri} not ingested: {done.refused[uris[0]]}")
        start, end = (stamp.isoformat() for stamp in done.window) if done.window else ("", "")
        results = [
            IngestionResult(
                feature_view=view.name,
                batch_id=batch.batch_id,
                batch_uri=batch.uri,
                part_uri=batch.part_uri,
                rows=batch.rows,
                start=start,
                end=end,
            )
            for batch in done.ingested
        ]
        if done.window is not None:
            self.log.info(
                "Wrote %d batch(es), %d rows, to %s; materialized %s from %s to %s",
                len(results), sum(r["rows"] for r in results), view.source_uri, view.name, *done.window,
            )  # fmt: skip
            self._record_events(context, results)
        self._openlineage = partial(
            merged_lineage, [partial(ingestion_lineage, result, store.project, done.schema) for result in results]
        )
        if single:
            return results[0]
        outcome = BatchesIngestedResult(
            feature_view=view.name, batches=results, refused=done.refused, rows=sum(r["rows"] for r in results)
        )
        if done.refused:
            self.push_result(context, outcome)
            reasons = "\n- ".join(f"{uri}: {why}" for uri, why in done.refused.items())
            raise AirflowFailException(
                f"{len(done.refused)} of {len(uris)} batch(es) not ingested (they stay where they are; "
                f"{len(results)} ingested):\n- {reasons}"
            )
        return outcome

    def _record_events(self, context: Context, results: list[IngestionResult]) -> None:
        """Put the ingested batches (ids and rows) in the feature view Asset's event, if it is an outlet."""
        asset = feature_view_asset(self.feature_view)
        if asset not in self.outlets:
            return
        events = [BatchIngestedEvent(batch_id=r["batch_id"], rows=r["rows"]) for r in results]
        extra: BatchIngestedEvent | BatchesIngestedEvent = (
            events[0]
            if isinstance(self.batch_uri, str)
            else BatchesIngestedEvent(batches=events, rows=sum(e["rows"] for e in events))
        )
        context["outlet_events"][asset].extra = cast("dict[str, Any]", extra)


class ArchiveBatchesOperator(OpenLineageMixin, MlopsBaseOperator):
    """Move the ingested batches out of the landing zone, then fail, skip or signal the new data.

    Runs once its upstream tasks are done, whatever happened to them (trigger rule ``all_done``), so that
    good batches are archived even when another one failed. Each ingested batch still in the landing zone
    moves to ``archive_uri`` (a retry skips the ones already moved). Then the task:

    * fails if a task instance of the run failed (or is ``upstream_failed``), or a landed batch was neither
      ingested nor quarantined (it is still in the landing zone);
    * skips, emitting nothing, if no batch was ingested (all were quarantined, or none landed);
    * otherwise emits one event of ``refreshed_asset`` with ``{batches, rows}`` in its extra, and returns
      an :class:`~airflow_mlops_provider.contracts.ArchiveResult`.

    ``ingested`` is normalized once, here: Airflow 3.3 hands the output of a mapped task group's task over
    as the list of the values its instances pushed (skipped and failed ones push none), but unwrapped when
    there is exactly one, and as ``None`` when there is none.

    :param batches: the landed batches' URIs, e.g. the output of a
        :class:`~airflow_mlops_provider.sensors.features.LandedBatchesSensor` (templated).
    :param ingested: the :class:`~airflow_mlops_provider.contracts.IngestionResult` of each ingested batch,
        e.g. the output of a mapped :class:`FeatureIngestionOperator` (templated).
    :param archive_uri: the prefix ingested batches move to (templated); by default
        ``[mlops] data_dir``/ingested/.
    :param refreshed_asset: the Asset that receives the event of a run that ingested data; ``None``: none.
    """

    template_fields: Sequence[str] = ("batches", "ingested", "archive_uri")

    def __init__(
        self,
        *,
        batches: Sequence[str] | XComArg | None,
        ingested: Sequence[Mapping[str, Any]] | Mapping[str, Any] | XComArg | None,
        archive_uri: str | None = None,
        refreshed_asset: Asset | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        if refreshed_asset is not None:
            kwargs["outlets"] = [*kwargs.get("outlets", []), refreshed_asset]
        super().__init__(**kwargs)
        self.batches = batches
        self.ingested = ingested
        self.archive_uri = archive_uri
        self.refreshed_asset = refreshed_asset

    def execute(self, context: Context) -> ArchiveResult:
        """Archive the ingested batches; fail, skip, or emit the event and return what was archived."""
        from airflow_mlops_provider.core.features.batches import archive_ingested

        landed = list(self.batches) if isinstance(self.batches, Sequence) else []
        results = self._ingestion_results()
        archive = self.archive_uri or data_path(DataFolder.INGESTED, "")
        moved = archive_ingested(
            landed, [result["batch_uri"] for result in results], archive, self.storage_hook.get_conn()
        )
        ti = context["ti"]
        failed = ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed", "upstream_failed"])
        if failed or moved.left:
            raise AirflowFailException(
                f"{failed} task(s) of this run failed; {len(moved.left)} batch(es) not ingested, left in the "
                f"landing zone: {moved.left}"
            )
        if not results:
            raise AirflowSkipException(f"No batch ingested ({len(landed)} quarantined): nothing new to signal")
        batch_ids, rows = [result["batch_id"] for result in results], sum(result["rows"] for result in results)
        if self.refreshed_asset is not None:
            event = FeaturesRefreshedEvent(batches=batch_ids, rows=rows)
            context["outlet_events"][self.refreshed_asset].extra = cast("dict[str, Any]", event)
        self._openlineage = partial(archive_lineage, [result["batch_uri"] for result in results], moved.archived)
        return ArchiveResult(
            batches=batch_ids, rows=rows, archived=moved.archived, quarantined=len(landed) - len(results)
        )

    def _ingestion_results(self) -> list[Mapping[str, Any]]:
        """``ingested`` as a list of one result per batch, whatever form Airflow handed it over in (see the
        class), with the batches of a task that ingested several taken out of its result."""
        handed = [self.ingested] if isinstance(self.ingested, Mapping) else self.ingested
        results = list(handed) if isinstance(handed, Sequence) else []
        return [batch for result in results for batch in result.get("batches", [result])]


class TrainingDatasetOperator(OpenLineageMixin, MlopsBaseOperator):
    """Build a point-in-time-correct training set from a feature service and a spine, with a split column.

    The spine (a parquet/CSV file, or a directory of them, local or ``s3://``) holds entity keys, event
    timestamps and labels; its rows in ``[window_start, window_end)`` get the features as of their
    timestamp, in the spine's order. Rows without a feature row within the TTL are counted and handled by
    ``missing_features`` (``drop``, ``fill`` or ``fail``); more than ``max_missing_fraction`` of them fails
    the task. A split column (train / validation / holdout) is added by ``split``, by default temporal on
    the timestamp column, and the set is written as parquet. Returns a
    :class:`~airflow_mlops_provider.contracts.TrainingSetResult`, whose ``digest`` equals the trainer's
    ``dataset_digest`` of the file; each key is also its own XCom, so ``task.output["uri"]`` feeds a
    downstream task. The trainer reads the written split column (its default policy).

    :param feature_service: the feature service to serve (templated).
    :param spine_uri: the spine file or directory (``/``-terminated) (templated).
    :param label_columns: the spine's label columns to keep.
    :param timestamp_column: the spine's event timestamp column.
    :param window_start: keep spine rows at or after this time (templated), e.g. ``{{ data_interval_start }}``.
    :param window_end: keep spine rows before this time (templated).
    :param output_uri: where to write (templated); by default
        ``[mlops] data_dir``/training_sets/<feature service>/<run id>.parquet.
    :param missing_features: ``drop``, ``fill`` or ``fail``.
    :param max_missing_fraction: the largest tolerated fraction of spine rows without features.
    :param fill_values: feature -> value for ``fill`` (numeric features default to 0).
    :param validation: fraction of rows (the middle ones in time) for validation.
    :param holdout: fraction of rows (the newest) held out.
    :param split_column: the name of the split column.
    :param split: the split policy that writes the split column (``SplitPolicy.temporal_by`` or
        ``random_by``; a stratified one stratifies on the single label column); it replaces
        ``validation``, ``holdout`` and ``split_column``. ``None``:
        ``SplitPolicy.temporal_by(timestamp_column, validation, holdout, split_column)``.
    """

    template_fields: Sequence[str] = ("feature_service", "spine_uri", "window_start", "window_end", "output_uri")

    def __init__(
        self,
        *,
        feature_service: str,
        spine_uri: str,
        label_columns: Sequence[str],
        timestamp_column: str = "event_timestamp",
        window_start: str | None = None,
        window_end: str | None = None,
        output_uri: str | None = None,
        missing_features: str = "drop",
        max_missing_fraction: float = 0.05,
        fill_values: Mapping[str, Any] | None = None,
        validation: float = 0.15,
        holdout: float = 0.15,
        split_column: str = Split.COLUMN,
        split: SplitPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if split is None:
            split = SplitPolicy.temporal_by(timestamp_column, validation, holdout, split_column)
        elif not isinstance(split, SplitPolicy) or split.reads_column:
            raise ValueError(
                "split must be a SplitPolicy that assigns the rows (temporal_by or random_by), "
                f"not {split.to_json() if isinstance(split, SplitPolicy) else type(split).__name__}"
            )
        if split.stratify and len(label_columns) != 1:
            raise ValueError(f"a stratified split needs exactly one label column, got {list(label_columns)}")
        self.split = split
        self.feature_service = feature_service
        self.spine_uri = spine_uri
        self.label_columns = list(label_columns)
        self.timestamp_column = timestamp_column
        self.window_start = window_start
        self.window_end = window_end
        self.output_uri = output_uri
        self.missing_features = missing_features
        self.max_missing_fraction = max_missing_fraction
        self.fill_values = dict(fill_values or {})
        self.validation = split.validation
        self.holdout = split.holdout
        self.split_column = split.column

    def execute(self, context: Context) -> TrainingSetResult:
        """Join, apply the missing-features policy, split, write, and return the reference."""
        require_extra("feast")
        from airflow_mlops_provider.core.features.feast_repo import feature_service, historical_features
        from airflow_mlops_provider.core.features.point_in_time import (
            MissingFeaturesPolicy,
            load_spine,
            parse_window,
            point_in_time_join,
        )
        from airflow_mlops_provider.core.io.datasets import write_dataset

        store = self.feast_hook.get_conn()
        storage = self.storage_hook.get_conn()
        try:
            policy = MissingFeaturesPolicy(self.missing_features, self.max_missing_fraction, self.fill_values)
            window = parse_window(self.window_start, self.window_end)
            entities, service = feature_service(store, self.feature_service)
            features = {name: dtype for served in service.features.values() for name, dtype in served.items()}
            spine = load_spine(self.spine_uri, entities, self.timestamp_column, self.label_columns, window, storage)

            def fetch(keys: pd.DataFrame) -> pd.DataFrame:
                return historical_features(store, self.feature_service, keys)

            result = point_in_time_join(spine, fetch, entities, self.timestamp_column, features, policy)
            frame = self.split.apply(result.frame, self.label_columns[0] if self.split.stratify else None)
        except (LookupError, ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"No training set from {self.spine_uri}: {err}") from err
        uri = self.output_uri or self._default_uri(context)
        digest = write_dataset(frame, uri, storage)
        self.log.info(
            "Training set %s: %d rows (%d of %d spine rows lacked features, %d dropped, %d filled), digest %s",
            uri, len(frame), result.missing, len(spine), result.dropped, result.filled, digest,
        )  # fmt: skip
        training_set = TrainingSetResult(
            uri=uri,
            digest=digest,
            rows=len(frame),
            dropped=result.dropped,
            missing=result.missing,
            filled=result.filled,
            window=window.label,
            feature_service=self.feature_service,
        )
        schema = {str(column): str(dtype) for column, dtype in frame.dtypes.items()}
        self._openlineage = partial(
            training_set_lineage, training_set, store.project, service.features, self.spine_uri, schema
        )
        return training_set

    def _default_uri(self, context: Context) -> str:
        """``<data_dir>/training_sets/<feature service>/<run id>.parquet``, each part a safe segment."""
        run = safe_segment(context["ti"].run_id)
        return data_path(DataFolder.TRAINING_SETS, safe_segment(self.feature_service), f"{run}.parquet")
