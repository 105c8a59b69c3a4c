"""Feature ingestion: raw batches in the landing zone -> GX gate (or quarantine) -> Feast offline store -> online."""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable, XComArg, task_group

from airflow_mlops_provider.contracts import feature_view_asset
from airflow_mlops_provider.operators.features import (
    ArchiveBatchesOperator,
    FeastApplyOperator,
    FeatureIngestionOperator,
)
from airflow_mlops_provider.operators.validation import DataValidationOperator
from airflow_mlops_provider.sensors.features import LandedBatchesSensor

from churn_common import FEATURE_VIEW, FEATURES_REFRESHED, INGESTED, LANDING, MODEL_NAME, OWNER, TARGET, TIME_COLUMN

DOC = f"""
### Feature ingestion into Feast

Raw batches (parquet or CSV files, one per batch, each holding `customer_id`, a time-zone-aware
`{TIME_COLUMN}`, the features and the `{TARGET}` label) land in `[mlops] data_dir`/landing/.

1. **apply_feature_definitions** applies `dags/feature_repo` (entities, sources, feature views, feature
   services) to the registry: CI/CD for feature definitions. A change that would break the feature service
   of the `{MODEL_NAME}` model's champion fails here, with the reasons, and nothing is applied.
2. **wait_for_batches** waits (without holding a worker slot between pokes) until batches land; when none
   arrive before the next run, it is skipped. A run triggered by hand does not wait: it ingests what has
   landed, or is skipped at once (for instance when a scheduled run took the batches first).
3. For each batch (a mapped task group, one instance per batch):
   - **validate_batch** checks it against `expectations/churn_raw_batch.json` (Great Expectations). A batch
     that fails is moved to `[mlops] data_dir`/quarantine/ with its validation result beside it
     (`<name>.validation.json`), the task links to its Data Docs and is skipped, and so is the batch's
     ingestion. The other batches flow on.
   - **ingest_batch** checks it against the feature view (columns, dtypes, non-null entity keys,
     time-zone-aware timestamps), appends it to the offline store as one part file named by the batch id,
     and materializes it to the online store. A batch it cannot read fails without retries, writes
     nothing and stays in the landing zone. Each ingested batch is an event on the
     `{feature_view_asset(FEATURE_VIEW).name}` Asset, with the batch id and row count.
4. **archive_batches** moves the ingested batches to `[mlops] data_dir`/ingested/ (the raw history, and the
   spine of point-in-time training sets: entity, timestamp, label), fails the run if a batch was neither
   ingested nor quarantined, and otherwise emits one `{FEATURES_REFRESHED.name}` event (batches, rows), on
   which `drift_monitor` runs.

Re-running is safe: re-ingesting a batch replaces its part file, so rows are never duplicated.
"""


@task_group  # type: ignore[type-var]  # returning the XComArg of the last task is supported at run time
def process_batch(batch_uri: str) -> XComArg:
    """Validate one batch, then ingest it; a batch that fails validation is quarantined and not ingested."""
    validate = DataValidationOperator(
        task_id="validate_batch",
        dataset=batch_uri,
        suite_path="expectations/churn_raw_batch.json",
        on_failure="quarantine",
        doc_md="Great Expectations gate on one raw batch. A failing batch is moved to quarantine/ with its "
        "result, and this task is skipped (so is the batch's ingestion). Links its **Data Docs**.",
    )
    ingest = FeatureIngestionOperator(
        task_id="ingest_batch",
        feature_view=FEATURE_VIEW,
        batch_uri=batch_uri,
        retries=2,
        # One at a time: materialization writes the registry file and the sqlite online store.
        max_active_tis_per_dag=1,
        doc_md="Appends the batch to the feature view's offline store (one part file per batch id) and "
        "materializes it online; emits an event on the feature view's Asset.",
    )
    validate >> ingest
    return ingest.output


with DAG(
    dag_id="feature_ingestion",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "features", "feast"],
    doc_md=DOC,
    default_args={"owner": OWNER},
):
    apply = FeastApplyOperator(
        task_id="apply_feature_definitions",
        model_name=MODEL_NAME,
        doc_md="Applies `dags/feature_repo` to the Feast registry; refuses a change that breaks the champion's "
        "feature service.",
    )
    # Soft fail: when no batch arrives before the next run, the run is skipped, not failed.
    wait = LandedBatchesSensor(
        task_id="wait_for_batches",
        prefix=LANDING,
        poke_interval=60,
        timeout=50 * 60,
        soft_fail=True,
        doc_md="Waits for batches in the landing zone and returns their URIs; skipped when none arrive.",
    )
    apply >> wait
    ingested = process_batch.expand(batch_uri=wait.output)
    ArchiveBatchesOperator(
        task_id="archive_batches",
        batches=wait.output,
        ingested=ingested,  # type: ignore[arg-type]  # a mapped task group's output: an XComArg at run time
        archive_uri=INGESTED,
        refreshed_asset=FEATURES_REFRESHED,
        doc_md="Moves ingested batches to ingested/, fails the run if a batch was neither ingested nor "
        "quarantined, and emits the features-refreshed Asset.",
    )
