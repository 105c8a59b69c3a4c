"""OpenLineage for the provider's tasks: one dataset naming, our facets, and a lineage builder per task.

Datasets are named by OpenLineage's naming spec where it has a rule, and stably everywhere, so that one
task's output is the next one's input:

* a file: ``s3://bucket/key`` → namespace ``s3://bucket``, name ``key``; a local path or ``file://`` URI →
  namespace ``file``, name the absolute path (a prefix loses its trailing ``/``);
* a Feast feature view: namespace ``feast://<project>``, name the view;
* MLflow: namespace the tracking URI without user info, query or fragment; a registered model version
  ``models/<name>/versions/<n>``; an alias ``models/<name>/aliases/<alias>``; the model a run logged: its
  model URI (``models:/m-...``).

Facets: ``version`` (a dataset's content digest), ``schema``, ``dataQualityAssertions`` and
``dataQualityMetrics`` (a Great Expectations result), and two of ours, :data:`PROMOTION_FACET` (the
champion/challenger decision, a run facet) and :data:`DRIFT_FACET` (the verdict, on the drift report).

Each operator keeps what its lineage needs while it executes (a :func:`functools.partial` of its builder,
over the result it returns) and :class:`OpenLineageMixin` builds the lineage when Airflow's OpenLineage
provider asks, with no network call. The provider is an optional extra (``openlineage``): this module
imports neither it, the OpenLineage client nor Airflow at import time, and without it the lineage is
``None``. No facet carries a credential: only URIs without user info, names, digests and verdicts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import urlsplit

from airflow_mlops_provider.contracts import (
    CHAMPION,
    DriftSummary,
    FeastApplyResult,
    IngestionResult,
    PromotionRecord,
    RegistrationResult,
    TrainingResult,
    TrainingSetResult,
    ValidationRecord,
)
from airflow_mlops_provider.core.io.storage import local_path

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

#: The namespace of local files (OpenLineage's naming spec).
FILE_NAMESPACE: Final = "file"
#: The scheme of Feast namespaces: ``feast://<project>``.
FEAST_SCHEME: Final = "feast"
#: Our run facet: the promotion decision (:class:`~airflow_mlops_provider.contracts.PromotionRecord`).
PROMOTION_FACET: Final = "mlops_promotion"
#: Our dataset facet on a drift report: the verdict of the check.
DRIFT_FACET: Final = "mlops_drift"
#: The ``_schemaURL`` of our facets, followed by ``#/$defs/<facet class>``.
FACET_SCHEMA_URL: Final = "urn:airflow-mlops-provider:openlineage:facets:1"


class DatasetId(NamedTuple):
    """An OpenLineage dataset's identity."""

    namespace: str
    name: str


def _host(netloc_uri: str) -> str:
    """The ``host[:port]`` of a URI, without user info."""
    parts = urlsplit(netloc_uri)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")


def storage_dataset(uri: str) -> DatasetId:
    """The dataset of a file or prefix: ``s3://bucket`` + key, ``file`` + absolute path.

    :param uri: a local path, ``file://`` or ``s3://`` URI (any ``scheme://host/path`` is named alike).
    """
    if "://" not in uri or uri.startswith("file://"):
        return DatasetId(FILE_NAMESPACE, os.path.abspath(local_path(uri)))
    return DatasetId(f"{urlsplit(uri).scheme}://{_host(uri)}", urlsplit(uri).path.strip("/"))


def feature_view_dataset(project: str, view: str) -> DatasetId:
    """The dataset of a Feast feature view.

    :param project: the Feast project.
    :param view: the view's name.
    """
    return DatasetId(f"{FEAST_SCHEME}://{project}", view)


def mlflow_namespace(tracking_uri: str) -> str:
    """The namespace of an MLflow server's models: its tracking URI without user info, query or fragment.

    :param tracking_uri: e.g. ``http://user:secret@mlflow:5000/`` → ``http://mlflow:5000``.
    """
    if "://" not in tracking_uri:
        return tracking_uri
    parts = urlsplit(tracking_uri)
    return f"{parts.scheme}://{_host(tracking_uri)}{parts.path.rstrip('/')}"


def model_version_dataset(tracking_uri: str, model_name: str, version: str) -> DatasetId:
    """The dataset of a registered model version: ``models/<name>/versions/<n>``.

    :param tracking_uri: the MLflow tracking URI.
    :param model_name: the registered model.
    :param version: its version.
    """
    return DatasetId(mlflow_namespace(tracking_uri), f"models/{model_name}/versions/{version}")


def model_alias_dataset(tracking_uri: str, model_name: str, alias: str) -> DatasetId:
    """The dataset of a registry alias: ``models/<name>/aliases/<alias>``.

    :param tracking_uri: the MLflow tracking URI.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    """
    return DatasetId(mlflow_namespace(tracking_uri), f"models/{model_name}/aliases/{alias}")


def logged_model_dataset(tracking_uri: str, model_uri: str) -> DatasetId:
    """The dataset of the model a training run logged, named by its model URI.

    :param tracking_uri: the MLflow tracking URI.
    :param model_uri: e.g. ``models:/m-0123``.
    """
    return DatasetId(mlflow_namespace(tracking_uri), model_uri)


def gx_assertions(gx_result: Any) -> list[tuple[str, str | None, bool]]:
    """``(expectation type, column, success)`` of each expectation of a Great Expectations result.

    :param gx_result: an ``ExpectationSuiteValidationResult``.
    """
    return [
        (evr.expectation_config.type, evr.expectation_config.kwargs.get("column"), bool(evr.success))
        for evr in gx_result.results
    ]


# --- Building ---------------------------------------------------------------------------------------


@cache
def _our_facets() -> tuple[Callable[..., RunFacet], Callable[..., DatasetFacet]]:
    """The classes of :data:`PROMOTION_FACET` and :data:`DRIFT_FACET`, defined on first use (the
    OpenLineage client is optional)."""
    import attrs
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

    @attrs.define(kw_only=True)
    class MlopsPromotionRunFacet(RunFacet):
        """The champion/challenger decision: the keys of a ``PromotionRecord``."""

        promote: bool
        reason: str
        metric: str | None = None
        challenger_score: float | None = None
        champion_score: float | None = None
        model_name: str | None = None
        version: str | None = None
        champion_version: str | None = None
        holdout_digest: str | None = None
        holdout_rows: int | None = None
        policy: dict[str, Any] | None = None

        @staticmethod
        def _get_schema() -> str:
            return f"{FACET_SCHEMA_URL}#/$defs/MlopsPromotionRunFacet"

    @attrs.define(kw_only=True)
    class MlopsDriftDatasetFacet(DatasetFacet):
        """The verdict of a drift check, on its report."""

        dataset_drift: bool
        share: float
        drift_share: float
        drifted_columns: list[str]
        reference_rows: int
        current_rows: int
        window_id: str | None = None
        episode: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return f"{FACET_SCHEMA_URL}#/$defs/MlopsDriftDatasetFacet"

    return MlopsPromotionRunFacet, MlopsDriftDatasetFacet


def _facets(digest: str | None = None, schema: Mapping[str, str] | None = None) -> dict[str, DatasetFacet]:
    """The ``version`` (content digest) and ``schema`` facets that are known."""
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    facets: dict[str, DatasetFacet] = {}
    if digest:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=digest)
    if schema:
        fields = [schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in schema.items()]
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
    return facets


def _input(dataset: DatasetId, facets: Mapping[str, DatasetFacet] | None = None, **input_facets: Any) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(*dataset, facets=dict(facets or {}), inputFacets=input_facets)


def _output(dataset: DatasetId, facets: Mapping[str, DatasetFacet] | None = None) -> OutputDataset:
    from openlineage.client.event_v2 import OutputDataset

    return OutputDataset(*dataset, facets=dict(facets or {}))


def _lineage(
    inputs: Iterable[InputDataset], outputs: Iterable[OutputDataset], run_facets: Mapping[str, RunFacet] | None = None
) -> OperatorLineage:
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=list(inputs), outputs=list(outputs), run_facets=dict(run_facets or {}))


def ingestion_lineage(result: IngestionResult, project: str, schema: Mapping[str, str]) -> OperatorLineage:
    """``FeatureIngestionOperator``: the raw batch → the feature view (with the batch's columns as written).

    :param result: what the task returned.
    :param project: the Feast project.
    :param schema: column → type of the rows written to the view.
    """
    view = feature_view_dataset(project, result["feature_view"])
    return _lineage([_input(storage_dataset(result["batch_uri"]))], [_output(view, _facets(schema=schema))])


def feast_apply_lineage(result: FeastApplyResult) -> OperatorLineage:
    """``FeastApplyOperator``: the feature views it applied.

    :param result: what the task returned.
    """
    return _lineage([], [_output(feature_view_dataset(result["project"], view)) for view in result["feature_views"]])


def archive_lineage(batch_uris: Sequence[str], archived: Sequence[str]) -> OperatorLineage:
    """``ArchiveBatchesOperator``: the ingested batches → where they moved.

    :param batch_uris: the ingested batches in the landing zone.
    :param archived: their URIs once archived.
    """
    return _lineage(
        [_input(storage_dataset(uri)) for uri in batch_uris], [_output(storage_dataset(uri)) for uri in archived]
    )


def training_set_lineage(
    result: TrainingSetResult,
    project: str,
    served: Mapping[str, Mapping[str, str]],
    spine_uri: str,
    schema: Mapping[str, str],
) -> OperatorLineage:
    """``TrainingDatasetOperator``: the feature service's views and the spine → the training set.

    :param result: what the task returned.
    :param project: the Feast project.
    :param served: feature view → {feature: dtype} the feature service serves.
    :param spine_uri: the spine file or prefix.
    :param schema: column → type of the written set.
    """
    views = [_input(feature_view_dataset(project, view), _facets(schema=features)) for view, features in served.items()]
    output = _output(storage_dataset(result["uri"]), _facets(result["digest"], schema))
    return _lineage([*views, _input(storage_dataset(spine_uri))], [output])


def validation_lineage(
    record: ValidationRecord | Mapping[str, Any], assertions: Sequence[tuple[str, str | None, bool]] | None = None
) -> OperatorLineage:
    """``DataValidationOperator``: the validated dataset, with its data-quality facets → the stored result
    (its Data Docs page), in every outcome.

    :param record: what the task returned or recorded.
    :param assertions: ``(expectation type, column, success)`` of every expectation (:func:`gx_assertions`);
        ``None``: the record's failures (a batch found already in quarantine).
    """
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    if assertions is None:
        assertions = [(failure["expectation_type"], failure.get("column"), False) for failure in record["failures"]]
    checked = _input(
        storage_dataset(record["dataset_uri"]),
        dataQualityAssertions=dqa.DataQualityAssertionsDatasetFacet(
            assertions=[dqa.Assertion(assertion=kind, success=ok, column=column) for kind, column, ok in assertions]
        ),
        dataQualityMetrics=dqm.DataQualityMetricsInputDatasetFacet(columnMetrics={}, rowCount=record.get("row_count")),
    )
    docs = record.get("docs_uri")
    return _lineage([checked], [_output(storage_dataset(docs))] if docs else [])


def training_lineage(result: TrainingResult, tracking_uri: str) -> OperatorLineage:
    """``GPUTrainingOperator``: the training set (with its digest) → the model its MLflow run logged.

    :param result: what the task returned.
    :param tracking_uri: the MLflow tracking URI.
    """
    dataset = result["dataset_uri"]
    inputs = [_input(storage_dataset(dataset), _facets(result["dataset_digest"]))] if dataset else []
    return _lineage(inputs, [_output(logged_model_dataset(tracking_uri, result["model_uri"]))])


def registration_lineage(
    result: RegistrationResult,
    tracking_uri: str,
    logged_model_uri: str,
    dataset_uri: str | None,
    dataset_digest: str | None,
) -> OperatorLineage:
    """``RegisterModelOperator``: the run's model and its training set → the model version.

    :param result: what the task returned.
    :param tracking_uri: the MLflow tracking URI.
    :param logged_model_uri: the model URI the version was made from.
    :param dataset_uri: the run's training set (its lineage tag), if recorded.
    :param dataset_digest: that set's digest, if recorded.
    """
    inputs = [_input(logged_model_dataset(tracking_uri, logged_model_uri))]
    if dataset_uri:
        inputs.append(_input(storage_dataset(dataset_uri), _facets(dataset_digest)))
    version = model_version_dataset(tracking_uri, result["model_name"], result["version"])
    return _lineage(inputs, [_output(version)])


def promotion_lineage(record: PromotionRecord, tracking_uri: str, alias: str = CHAMPION) -> OperatorLineage:
    """``PromoteModelOperator``: the challenger, the champion it was compared with and the holdout data → the
    champion alias (when promoted), with the decision as the :data:`PROMOTION_FACET` run facet.

    :param record: what the task returned or recorded.
    :param tracking_uri: the MLflow tracking URI.
    :param alias: the alias a promotion moves.
    """
    name = record["model_name"]
    versions = [record["version"], *([record["champion_version"]] if record.get("champion_version") else [])]
    inputs = [_input(model_version_dataset(tracking_uri, name, str(version))) for version in versions]
    inputs.append(_input(storage_dataset(record["holdout_uri"])))
    outputs = [_output(model_alias_dataset(tracking_uri, name, alias))] if record["promote"] else []
    facet_type = _our_facets()[0]
    fields = {key: record.get(key) for key in _facet_fields(facet_type)}
    return _lineage(inputs, outputs, {PROMOTION_FACET: facet_type(**fields)})


def rollback_lineage(model_name: str, restored: str, tracking_uri: str, alias: str = CHAMPION) -> OperatorLineage:
    """``RollbackModelOperator``: the restored version → the champion alias.

    :param model_name: the registered model.
    :param restored: the version the alias moved back to.
    :param tracking_uri: the MLflow tracking URI.
    :param alias: the alias moved back.
    """
    version = model_version_dataset(tracking_uri, model_name, restored)
    return _lineage([_input(version)], [_output(model_alias_dataset(tracking_uri, model_name, alias))])


def drift_lineage(
    summary: DriftSummary, tracking_uri: str | None = None, current: DatasetId | None = None
) -> OperatorLineage:
    """``DriftCheckOperator``: the model version, its training set (the reference) and the current data → the
    drift report, with the verdict as the :data:`DRIFT_FACET` facet. A forwarded drift event
    (``ForwardDriftEventOperator``) has the report as its input instead.

    :param summary: what the check returned.
    :param tracking_uri: the MLflow tracking URI, when the reference is a model version's training set.
    :param current: the current data's dataset (a feature view); by default the summary's ``current_uri``.
    """
    inputs = []
    model_name, version = summary.get("model_name"), summary.get("model_version")
    if tracking_uri and model_name and version:
        inputs.append(_input(model_version_dataset(tracking_uri, model_name, version)))
    inputs.append(_input(storage_dataset(summary["reference_uri"]), _facets(summary.get("reference_digest"))))
    inputs.append(_input(current or storage_dataset(summary["current_uri"])))
    report = summary.get("report_uri")
    return _lineage(inputs, [_output(storage_dataset(report), drift_facets(summary))] if report else [])


def forwarded_drift_lineage(summary: DriftSummary) -> OperatorLineage:
    """``ForwardDriftEventOperator``: the drift report whose event it forwards.

    :param summary: the forwarded summary.
    """
    report = summary.get("report_uri")
    return _lineage([_input(storage_dataset(report), drift_facets(summary))] if report else [], [])


def drift_facets(summary: DriftSummary) -> dict[str, DatasetFacet]:
    """The :data:`DRIFT_FACET` of a drift report.

    :param summary: the check's summary.
    """
    facet_type = _our_facets()[1]
    return {DRIFT_FACET: facet_type(**{key: summary.get(key) for key in _facet_fields(facet_type)})}


def _facet_fields(facet_type: Any) -> list[str]:
    """The fields of one of our facets, without the ones every facet has (``_producer``, ...).

    :param facet_type: a class of :func:`_our_facets`.
    """
    import attrs

    return [field.name for field in attrs.fields(facet_type) if not field.name.startswith("_")]


class OpenLineageMixin:
    """``get_openlineage_facets_on_complete`` for an operator that sets :attr:`_openlineage` in ``execute``.

    Airflow's OpenLineage provider calls it when the task succeeds, is skipped, or fails (the provider falls
    back to it without a ``..._on_failure``): a gate that records its result before failing or skipping sets
    :attr:`_openlineage` first, so a failed validation reports its data-quality facets too.
    """

    #: The task's lineage builder, bound to what ``execute`` found; ``None`` until then.
    _openlineage: Callable[[], OperatorLineage] | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The task's inputs, outputs and facets, or ``None`` if it produced nothing or OpenLineage is missing.

        :param task_instance: the finished task instance (unused: ``execute`` kept what is needed).
        """
        if self._openlineage is None:
            return None
        try:
            return self._openlineage()
        except ImportError:  # the ``openlineage`` extra is not installed
            return None
