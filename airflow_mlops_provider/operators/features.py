"""Feature store operators: apply definitions (guarded), ingest batches, build point-in-time training sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import data_dir, safe_segment
from airflow_mlops_provider.hooks.feast import FeastHook
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.hooks.storage import ObjectStorageHook

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

#: Model version tag naming the feature service the model was trained on.
FEATURE_SERVICE_TAG = "mlops.feature_service"


def feature_view_asset(feature_view: str) -> Asset:
    """The Asset that stands for a feature view's data; ingestion emits an event on it per batch.

    :param feature_view: the feature view's name.
    """
    return Asset(name=f"feature_view.{feature_view}", uri=f"feast://feature_views/{feature_view}", group="feature")


class FeastApplyOperator(BaseOperator):
    """Apply a feature repo's definitions, like ``feast apply``: CI/CD for feature definitions.

    Objects the repo no longer defines are deleted from the registry. When ``model_name`` is set, the
    registered ``champion`` version's ``mlops.feature_service`` tag names a feature service that must keep
    working: a change that removes a view or a feature it serves, or changes such a feature's dtype,
    fails the task before anything is applied. Returns ``{project, feature_views, feature_services,
    protected_service}``.

    :param repo_path: the feature repo directory (templated); by default the connection's ``repo_path``.
    :param model_name: the registered model whose champion's feature service is protected; ``None``: no guard.
    :param champion_alias: the alias of the version in production.
    :param feast_conn_id: the ``feast`` connection.
    :param mlflow_conn_id: the ``mlflow`` connection.
    """

    template_fields: Sequence[str] = ("repo_path", "model_name")

    def __init__(
        self,
        *,
        repo_path: str | None = None,
        model_name: str | None = None,
        champion_alias: str = "champion",
        feast_conn_id: str = FeastHook.default_conn_name,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repo_path = repo_path
        self.model_name = model_name
        self.champion_alias = champion_alias
        self.feast_conn_id = feast_conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Load the repo, check it against the champion's feature service, and apply it."""
        require_extra("feast")
        from airflow_mlops_provider.core.features.feast_repo import (
            apply_repo,
            load_repo,
            registry_definitions,
            repo_definitions,
        )
        from airflow_mlops_provider.core.features.specs import breaking_changes

        hook = FeastHook(self.feast_conn_id)
        store = hook.get_conn()
        repo_path = self.repo_path or hook.repo_path
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
        return {
            "project": store.project,
            "feature_views": sorted(view.name for view in [*repo.feature_views, *repo.on_demand_feature_views]),
            "feature_services": sorted(service.name for service in repo.feature_services),
            "protected_service": protected,
        }

    def _champion_service(self) -> str | None:
        if not self.model_name:
            return None
        hook = MlflowHook(self.mlflow_conn_id)
        version = hook.get_alias_version(self.model_name, self.champion_alias)
        if version is None:
            self.log.info("Model %r has no %s yet: nothing to protect", self.model_name, self.champion_alias)
            return None
        service = hook.get_conn().get_model_version(self.model_name, version).tags.get(FEATURE_SERVICE_TAG)
        if not service:
            self.log.warning("%s v%s has no %s tag: nothing to protect", self.model_name, version, FEATURE_SERVICE_TAG)
        return service or None


class FeatureIngestionOperator(BaseOperator):
    """Ingest one raw batch into a feature view: check it, append it to the offline store, materialize it.

    The batch (parquet or CSV, local or ``s3://``) must hold the view's entity keys (no nulls), its event
    timestamp (time-zone aware) and every feature with its dtype; extra columns are left out. It is written
    as one part file named by the batch id into the view's directory source, so re-ingesting a batch
    replaces its part. Then the batch's time range, up to the newest data of the view, is materialized to
    the online store with ``materialize(start, end)``. A bad batch fails the task, without retries, before
    anything is written. An event on :func:`feature_view_asset` carries the batch id and row count.
    Returns ``{feature_view, batch_id, batch_uri, part_uri, rows, start, end}``.

    :param feature_view: the feature view to feed.
    :param batch_uri: the raw batch (templated).
    :param batch_id: the batch's id (templated); by default the batch's file name without its suffix.
    :param feast_conn_id: the ``feast`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` batches and sources.
    """

    template_fields: Sequence[str] = ("batch_uri", "batch_id")

    def __init__(
        self,
        *,
        feature_view: str,
        batch_uri: str,
        batch_id: str | None = None,
        feast_conn_id: str = FeastHook.default_conn_name,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [feature_view_asset(feature_view)])
        super().__init__(**kwargs)
        self.feature_view = feature_view
        self.batch_uri = batch_uri
        self.batch_id = batch_id
        self.feast_conn_id = feast_conn_id
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Check, append and materialize the batch; record the asset event."""
        require_extra("feast")
        from airflow_mlops_provider.core.features import batches
        from airflow_mlops_provider.core.features.feast_repo import feature_view
        from airflow_mlops_provider.core.features.offline_source import materialization_window, part_uri, write_part

        store = FeastHook(self.feast_conn_id).get_conn()
        storage = ObjectStorageHook(self.storage_conn_id).get_conn()
        try:
            view = feature_view(store, self.feature_view)
            batch_id = batches.safe_batch_id(self.batch_id or batches.batch_id_from_uri(self.batch_uri))
            table = batches.conform_batch(batches.read_batch(self.batch_uri, storage), view, self.batch_uri)
            part = part_uri(view.source_uri, batch_id)
        except (LookupError, ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"Batch {self.batch_uri} not ingested: {err}") from err
        write_part(table, part, storage)
        self.log.info("Wrote %d rows of batch %s to %s", table.num_rows, batch_id, part)
        start, end = materialization_window(table, view.timestamp_field, view.source_uri, storage)
        store.materialize(start.to_pydatetime(), end.to_pydatetime(), feature_views=[view.name])
        self.log.info("Materialized %s from %s to %s", view.name, start, end)
        asset = feature_view_asset(self.feature_view)
        if asset in self.outlets:
            context["outlet_events"][asset].extra = {"batch_id": batch_id, "rows": table.num_rows}
        return {
            "feature_view": view.name,
            "batch_id": batch_id,
            "batch_uri": self.batch_uri,
            "part_uri": part,
            "rows": table.num_rows,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }


class TrainingDatasetOperator(BaseOperator):
    """Build a point-in-time-correct training set from a feature service and a spine, with a split column.

    The spine (a parquet/CSV file, or a directory of them, local or ``s3://``) holds entity keys, event
    timestamps and labels; its rows in ``[window_start, window_end)`` get the features as of their
    timestamp, in the spine's order. Rows without a feature row within the TTL are counted and handled by
    ``missing_features`` (``drop``, ``fill`` or ``fail``); more than ``max_missing_fraction`` of them fails
    the task. A temporal ``split`` column (train / validation / holdout) is added, and the set is written
    as parquet. Returns ``{uri, digest, rows, dropped, missing, filled, window, feature_service}``, where
    ``digest`` equals the trainer's ``dataset_digest`` of the file; each key is also its own XCom, so
    ``task.output["uri"]`` feeds a downstream task.

    :param feature_service: the feature service to serve (templated).
    :param spine_uri: the spine file or directory (``/``-terminated) (templated).
    :param label_columns: the spine's label columns to keep.
    :param timestamp_column: the spine's event timestamp column.
    :param window_start: keep spine rows at or after this time (templated), e.g. ``{{ data_interval_start }}``.
    :param window_end: keep spine rows before this time (templated).
    :param output_uri: where to write (templated); by default under ``[mlops] data_dir``/training_sets.
    :param missing_features: ``drop``, ``fill`` or ``fail``.
    :param max_missing_fraction: the largest tolerated fraction of spine rows without features.
    :param fill_values: feature -> value for ``fill`` (numeric features default to 0).
    :param validation: fraction of rows (the middle ones in time) for validation.
    :param holdout: fraction of rows (the newest) held out.
    :param split_column: the name of the split column.
    :param feast_conn_id: the ``feast`` connection.
    :param storage_conn_id: the ``mlops_s3`` connection for ``s3://`` spines and outputs.
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
        split_column: str = "split",
        feast_conn_id: str = FeastHook.default_conn_name,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # downstream tasks read output["uri"], output["window"], ...
        super().__init__(**kwargs)
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
        self.validation = validation
        self.holdout = holdout
        self.split_column = split_column
        self.feast_conn_id = feast_conn_id
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
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
        from airflow_mlops_provider.core.io.splits import temporal_split

        store = FeastHook(self.feast_conn_id).get_conn()
        storage = ObjectStorageHook(self.storage_conn_id).get_conn()
        try:
            policy = MissingFeaturesPolicy(self.missing_features, self.max_missing_fraction, self.fill_values)
            window = parse_window(self.window_start, self.window_end)
            entities, service = feature_service(store, self.feature_service)
            features = {name: dtype for served in service.features.values() for name, dtype in served.items()}
            spine = load_spine(self.spine_uri, entities, self.timestamp_column, self.label_columns, window, storage)

            def fetch(keys: pd.DataFrame) -> pd.DataFrame:
                return historical_features(store, self.feature_service, keys)

            result = point_in_time_join(spine, fetch, entities, self.timestamp_column, features, policy)
            frame = temporal_split(
                result.frame, self.timestamp_column, self.validation, self.holdout, self.split_column
            )
        except (LookupError, ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"No training set from {self.spine_uri}: {err}") from err
        uri = self.output_uri or self._default_uri(context)
        digest = write_dataset(frame, uri, storage)
        self.log.info(
            "Training set %s: %d rows (%d of %d spine rows lacked features, %d dropped, %d filled), digest %s",
            uri, len(frame), result.missing, len(spine), result.dropped, result.filled, digest,
        )  # fmt: skip
        return {
            "uri": uri,
            "digest": digest,
            "rows": len(frame),
            "dropped": result.dropped,
            "missing": result.missing,
            "filled": result.filled,
            "window": window.label,
            "feature_service": self.feature_service,
        }

    def _default_uri(self, context: Context) -> str:
        run = safe_segment(context["ti"].run_id)
        return f"{data_dir()}/training_sets/{safe_segment(self.feature_service)}/{run}.parquet"
