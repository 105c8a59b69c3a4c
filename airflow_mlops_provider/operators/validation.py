"""Data validation gate: a dataset against a Great Expectations suite, with Data Docs and quarantine."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.config import DataFolder, data_path, safe_segment, task_output_path
from airflow_mlops_provider.contracts import BatchesValidation, ValidationRecord
from airflow_mlops_provider.core.io.urls import object_url
from airflow_mlops_provider.links.validation import ValidationDocsLink
from airflow_mlops_provider.openlineage_facets import OpenLineageMixin, gx_assertions, validation_lineage
from airflow_mlops_provider.operators.base import MlopsBaseOperator
from airflow_mlops_provider.operators.features import merged_lineage

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, XComArg

    from airflow_mlops_provider.core.io.storage import ObjectStore

ON_FAILURE = ("fail", "warn", "quarantine")


class DataValidationOperator(OpenLineageMixin, MlopsBaseOperator):
    """Validate a dataset against a Great Expectations 1.x suite kept as JSON next to the DAG.

    The Data Docs page of the run is stored at ``docs_uri`` and linked from the task ("Data Docs"). The
    compact result, a :class:`~airflow_mlops_provider.contracts.ValidationRecord`, is the task's return
    value in every outcome: returned when the task passes or warns, recorded as its return value before
    it fails or skips. What a failed validation does depends on ``on_failure``:

    * ``"fail"`` (default): raise :class:`AirflowFailException` (no retry) whose message lists what
      failed, so nothing downstream runs.
    * ``"warn"``: log it and return the result (``success`` is false), e.g. for a branch.
    * ``"quarantine"``: move the dataset under ``quarantine_uri`` with its result beside it
      (``<name>.validation.json``) and raise :class:`AirflowSkipException`, so the tasks that would
      ingest it skip while other mapped batches flow on. A rerun after that skips again.

    Given a list of datasets (raw batches, say), the task validates them all, with one GX run for all of
    them when the suite allows (see :mod:`~airflow_mlops_provider.core.features.batch_gate`), and applies
    ``on_failure`` to each failing one on its own: each quarantined batch gets its own result and Data Docs
    page, and the others flow on. A dataset that cannot be read fails its validation. The task returns a
    :class:`~airflow_mlops_provider.contracts.BatchesValidation` (``passed`` feeds the ingestion); it fails
    (``"fail"``) if any dataset failed, and skips (``"quarantine"``) only when none passed.

    Paths left unset default under ``[mlops] data_dir``.

    :param dataset: the dataset's URI (parquet or CSV, local path or ``s3://``), or a dict with a
        ``"uri"`` key such as a training-set task's XCom, or a list of URIs (templated).
    :param suite_path: the suite's JSON file; a relative path is resolved against the DAG file's folder,
        e.g. ``"expectations/churn_raw_batch.json"`` (templated).
    :param on_failure: ``"fail"``, ``"warn"`` or ``"quarantine"``.
    :param quarantine_uri: the quarantine prefix, outside the prefix batches are listed from (templated);
        by default ``{[mlops] data_dir}/quarantine``.
    :param docs_uri: where to store the Data Docs HTML page (templated); by default
        ``{[mlops] data_dir}/validation/{dag_id}/{run_id}/{task_id}[.{map_index}].html``. For a list, the
        page of the datasets validated together; a dataset validated alone gets ``<docs_uri>.<name>.html``.
    :param sample_size: distinct unexpected values kept per failed expectation.
    """

    template_fields: Sequence[str] = ("dataset", "suite_path", "quarantine_uri", "docs_uri")
    operator_extra_links = (ValidationDocsLink(),)

    def __init__(
        self,
        *,
        dataset: str | Mapping[str, Any] | Sequence[str] | XComArg,
        suite_path: str,
        on_failure: str = "fail",
        quarantine_uri: str | None = None,
        docs_uri: str | None = None,
        sample_size: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {ON_FAILURE}, got {on_failure!r}")
        self.dataset = dataset
        self.suite_path = suite_path
        self.on_failure = on_failure
        self.quarantine_uri = quarantine_uri
        self.docs_uri = docs_uri
        self.sample_size = sample_size

    def execute(self, context: Context) -> ValidationRecord | BatchesValidation:
        """Validate, store the Data Docs, then pass, warn, fail or quarantine."""
        require_extra("gx")
        from airflow_mlops_provider.core.io.datasets import read_batch
        from airflow_mlops_provider.core.validation import suites as validation
        from airflow_mlops_provider.core.validation.quarantine import quarantine_batch, quarantined_result

        if isinstance(self.dataset, Sequence) and not isinstance(self.dataset, str):
            return self._validate_many(context, list(self.dataset))
        uri = self._dataset_uri()
        store = self.storage_hook.get_conn()
        quarantine = self.quarantine_uri or data_path(DataFolder.QUARANTINE)
        if self.on_failure == "quarantine" and not store.exists(uri):
            recorded = quarantined_result(uri, quarantine, store)
            if recorded is not None:
                self._openlineage = partial(validation_lineage, recorded)
                self.push_result(context, recorded)
                raise AirflowSkipException(f"{uri} is already in quarantine:\n{recorded['message']}")
        try:
            suite = validation.load_suite(json.loads(store.read_bytes(self._suite_location())))
            frame = read_batch(uri, store=store)
        except (ValueError, FileNotFoundError) as err:  # JSONDecodeError is a ValueError
            raise AirflowFailException(f"Cannot validate {uri} against {self.suite_path}: {err}") from err

        gx_result = validation.run_suite(frame, suite)
        result = validation.summarize(gx_result, len(frame), self.sample_size)
        docs_uri = self.docs_uri or f"{task_output_path(context, DataFolder.VALIDATION)}.html"
        store.write_bytes(docs_uri, validation.render_data_docs(gx_result).encode())
        docs_url = object_url(docs_uri, store.config)
        ValidationDocsLink.persist(context, docs_url)
        record = ValidationRecord(**result.to_record(), dataset_uri=uri, docs_uri=docs_uri, docs_url=docs_url)
        self._openlineage = partial(validation_lineage, record, gx_assertions(gx_result))

        if result.success:
            self.log.info("%s", result.message)
        elif self.on_failure == "fail":
            self.push_result(context, record)
            raise AirflowFailException(f"Data validation of {uri} failed. {result.message}\nData Docs: {docs_url}")
        elif self.on_failure == "warn":
            self.log.warning("Data validation of %s failed. %s\nData Docs: %s", uri, result.message, docs_url)
        else:
            target = quarantine_batch(uri, quarantine, record, store)
            self.push_result(context, record)
            raise AirflowSkipException(f"Quarantined {uri} at {target}. {result.message}\nData Docs: {docs_url}")
        return record

    def _validate_many(self, context: Context, uris: list[str]) -> BatchesValidation:
        """Validate ``uris`` together where the suite allows; pass, warn, fail or quarantine each alone."""
        from airflow_mlops_provider.core.features.batch_gate import validate_batches
        from airflow_mlops_provider.core.io.datasets import read_batch
        from airflow_mlops_provider.core.validation import suites as validation
        from airflow_mlops_provider.core.validation.quarantine import quarantine_batch, quarantined_result

        store = self.storage_hook.get_conn()
        quarantine = self.quarantine_uri or data_path(DataFolder.QUARANTINE)
        try:
            suite = json.loads(store.read_bytes(self._suite_location()))
            validation.load_suite(suite)
        except (ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot validate {uris} against {self.suite_path}: {err}") from err
        records: dict[str, ValidationRecord] = {}
        frames = {}
        for uri in uris:
            recorded = None
            if self.on_failure == "quarantine" and not store.exists(uri):
                recorded = quarantined_result(uri, quarantine, store)
            if recorded is not None:
                records[uri] = ValidationRecord(**recorded)  # type: ignore[typeddict-item]
                continue
            try:
                frames[uri] = read_batch(uri, store=store)
            except (ValueError, FileNotFoundError) as err:
                message = f"Cannot read {uri}: {err}"
                records[uri] = ValidationRecord(success=False, suite_name=suite["name"], row_count=0, failures=[],
                                                statistics={}, message=message, dataset_uri=uri)  # fmt: skip
        base = (self.docs_uri or task_output_path(context, DataFolder.VALIDATION)).removesuffix(".html")
        lineage: list[Callable[[], OperatorLineage]] = []
        together_written = False
        for verdict in validate_batches(frames, suite, self.sample_size):
            if verdict.alone:
                docs_uri = f"{base}.{safe_segment(verdict.uri.rstrip('/').rsplit('/', 1)[-1])}.html"
                store.write_bytes(docs_uri, validation.render_data_docs(verdict.gx_result).encode())
            else:
                docs_uri = f"{base}.html"
                if not together_written:
                    store.write_bytes(docs_uri, validation.render_data_docs(verdict.gx_result).encode())
                    together_written = True
            record = ValidationRecord(**verdict.result.to_record(), dataset_uri=verdict.uri, docs_uri=docs_uri,
                                      docs_url=object_url(docs_uri, store.config))  # fmt: skip
            records[verdict.uri] = record
            lineage.append(partial(validation_lineage, record, gx_assertions(verdict.gx_result)))
        ordered = [records[uri] for uri in uris]
        failed = [record for record in ordered if not record["success"]]
        lineage += [partial(validation_lineage, records[uri]) for uri in uris if uri not in frames]
        self._openlineage = partial(merged_lineage, lineage)
        linked = next((r for r in failed if r.get("docs_url")), next((r for r in ordered if r.get("docs_url")), None))
        if linked is not None:
            ValidationDocsLink.persist(context, linked["docs_url"])
        return self._judge_many(context, ordered, failed, quarantine, store, quarantine_batch)

    def _judge_many(
        self,
        context: Context,
        records: list[ValidationRecord],
        failed: list[ValidationRecord],
        quarantine: str,
        store: ObjectStore,
        quarantine_batch: Callable[..., str],
    ) -> BatchesValidation:
        """Apply ``on_failure`` to each failed dataset; return (or record, before failing or skipping) the outcome."""
        passed = [record["dataset_uri"] for record in records if record["success"]]
        report = "\n".join(f"{r['dataset_uri']}: {r['message']}\nData Docs: {r.get('docs_url')}" for r in failed)
        quarantined = []
        if self.on_failure == "quarantine":
            for record in failed:
                if store.exists(record["dataset_uri"]):
                    quarantine_batch(record["dataset_uri"], quarantine, record, store)
                quarantined.append(record["dataset_uri"])
        outcome = BatchesValidation(passed=passed, quarantined=quarantined, records=records)
        if not failed:
            self.log.info("All %d datasets passed %s", len(records), self.suite_path)
        elif self.on_failure == "fail":
            self.push_result(context, outcome)
            raise AirflowFailException(f"Data validation of {len(failed)} of {len(records)} datasets failed.\n{report}")
        elif self.on_failure == "warn":
            self.log.warning("Data validation of %d of %d datasets failed.\n%s", len(failed), len(records), report)
        else:
            self.log.warning("Quarantined %d of %d datasets at %s.\n%s", len(failed), len(records), quarantine, report)
            if not passed:
                self.push_result(context, outcome)
                raise AirflowSkipException(f"All {len(records)} datasets quarantined at {quarantine}.\n{report}")
        return outcome

    def _dataset_uri(self) -> str:
        """The dataset's URI from a plain URI or an XCom dict with a ``"uri"`` key."""
        dataset = self.dataset
        uri = dataset.get("uri") if isinstance(dataset, Mapping) else dataset
        if not isinstance(uri, str) or not uri:
            raise AirflowFailException(f"dataset must be a URI or a dict with a 'uri', got {dataset!r}")
        return uri

    def _suite_location(self) -> str:
        """The suite's path or URI; a relative path is taken from the DAG file's folder."""
        if "://" in self.suite_path or Path(self.suite_path).is_absolute() or not self.has_dag():
            return self.suite_path
        return str(Path(self.dag.fileloc).parent / self.suite_path)
