"""Feature ingestion: raw batches in the landing zone -> GX gate (or quarantine) -> Feast offline store -> online."""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable, Param, XComArg, get_current_context, task, task_group

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
3. **split_batches** spreads the landed batches, oldest first, over at most `ingestion_tasks` chunks (a
   Param, 4 by default): one instance of the mapped task group below per chunk, so that a backlog is
   ingested by several workers at once, each paying the start-up of a task once for many batches.
4. For each chunk (a mapped task group):
   - **validate_batches** checks every batch against `expectations/churn_raw_batch.json` (Great
     Expectations), with one validation run for the whole chunk when the suite allows (each batch is
     validated alone when that run fails). Each batch that fails, or cannot be read, is moved to
     `[mlops] data_dir`/quarantine/ with its own validation result beside it (`<name>.validation.json`)
     and its own Data Docs page (linked from the task); the other batches flow on. The task is skipped,
     and so is the chunk's ingestion, only when every batch of the chunk was quarantined.
   - **ingest_batches** checks each batch that passed against the feature view (columns, dtypes,
     non-null entity keys, time-zone-aware timestamps at most 15 minutes in the future, one row per
     customer and timestamp), appends each as one part file named by its batch id to the offline store,
     and writes their newest rows to the online store at once (never over newer values already online;
     the offline store is not read again). A batch it refuses writes nothing and stays
     in the landing zone, and the task then fails without retries after ingesting the others. The task's
     event on the `{feature_view_asset(FEATURE_VIEW).name}` Asset lists each ingested batch id with its
     row count. One chunk is ingested at a time (the local online store is one SQLite file).
5. **archive_batches** moves the ingested batches to `[mlops] data_dir`/ingested/ (the raw history, and the
   spine of point-in-time training sets: entity, timestamp, label), fails the run if a batch was neither
   ingested nor quarantined, and otherwise emits one `{FEATURES_REFRESHED.name}` event (batches, rows), on
   which `drift_monitor` runs.

Re-running is safe: re-ingesting a batch replaces its part file, so rows are never duplicated, and
materializing again puts the same newest values online; a task killed midway and retried does the same.
"""


@task(
    task_id="split_batches",
    doc_md="Spreads the landed batches over at most `ingestion_tasks` chunks: one mapped task group per chunk.",
)
def split_batches(batches: list[str]) -> list[list[str]]:
    """Spread the landed batches over at most the ``ingestion_tasks`` Param's chunks, one per mapped task group."""
    from airflow_mlops_provider.core.features.ingestion import spread

    return spread(batches, int(get_current_context()["params"]["ingestion_tasks"]))


@task_group  # type: ignore[type-var]  # returning the XComArg of the last task is supported at run time
def ingest_chunk(batch_uris: list[str]) -> XComArg:
    """Validate a chunk of batches, then ingest those that passed; each failing batch is quarantined alone."""
    validate = DataValidationOperator(
        task_id="validate_batches",
        dataset=batch_uris,
        suite_path="expectations/churn_raw_batch.json",
        on_failure="quarantine",
        doc_md="Great Expectations gate on a chunk of raw batches. Each failing batch is moved to quarantine/ "
        "with its own result and **Data Docs**; the others flow on. Skipped when all were quarantined.",
    )
    ingest = FeatureIngestionOperator(
        task_id="ingest_batches",
        feature_view=FEATURE_VIEW,
        batch_uri=validate.output["passed"],
        retries=2,
        # One at a time: materialization writes the registry file and the sqlite online store.
        max_active_tis_per_dag=1,
        doc_md="Appends each batch that passed to the feature view's offline store (one part file per batch "
        "id), materializes them online at once, and emits an event on the feature view's Asset.",
    )
    return ingest.output


with DAG(
    dag_id="feature_ingestion",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "features", "feast"],
    params={
        "ingestion_tasks": Param(
            4,
            type="integer",
            minimum=1,
            maximum=32,
            description="The most chunks a run's batches are spread over (mapped tasks)",
        ),
    },
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
    ingested = ingest_chunk.expand(batch_uris=split_batches(wait.output))  # type: ignore[arg-type]
    ArchiveBatchesOperator(
        task_id="archive_batches",
        batches=wait.output,
        ingested=ingested,  # type: ignore[arg-type]  # a mapped task group's output: an XComArg at run time
        archive_uri=INGESTED,
        refreshed_asset=FEATURES_REFRESHED,
        doc_md="Moves ingested batches to ingested/, fails the run if a batch was neither ingested nor "
        "quarantined, and emits the features-refreshed Asset.",
    )
