"""Feature ingestion: raw batches in the landing zone -> GX gate (or quarantine) -> Feast offline store -> online."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, CronTriggerTimetable, PokeReturnValue, TriggerRule, XComArg, task, task_group

from airflow_mlops_provider.config import data_dir
from airflow_mlops_provider.operators.features import (
    FeastApplyOperator,
    FeatureIngestionOperator,
    feature_view_asset,
)
from airflow_mlops_provider.operators.validation import DataValidationOperator

FEATURE_VIEW = "customer_stats"
MODEL_NAME = "churn"
#: One event per run that ingested at least one batch: drift_monitor checks the new data on it.
FEATURES_REFRESHED = Asset(name="churn_features_refreshed", uri="mlops://features/churn/refreshed", group="feature")

DOC = """
### Feature ingestion into Feast

Raw batches (parquet or CSV files, one per batch, each holding `customer_id`, a time-zone-aware
`event_timestamp`, the features and the `churned` label) land in `[mlops] data_dir`/landing/.

1. **apply_feature_definitions** applies `dags/feature_repo` (entities, sources, feature views, feature
   services) to the registry: CI/CD for feature definitions. A change that would break the feature service
   of the `churn` model's champion fails here, with the reasons, and nothing is applied.
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
     nothing and stays in the landing zone. Each ingested batch is an event on the `customer_stats` Asset,
     with the batch id and row count.
4. **archive_batches** moves the ingested batches to `[mlops] data_dir`/ingested/ (the raw history, and the
   spine of point-in-time training sets: entity, timestamp, label), fails the run if a batch was neither
   ingested nor quarantined, and otherwise emits one `churn_features_refreshed` event (batches, rows), on
   which `drift_monitor` runs.

Re-running is safe: re-ingesting a batch replaces its part file, so rows are never duplicated.
"""


@task.sensor(poke_interval=60, timeout=50 * 60, mode="reschedule", soft_fail=True)
def wait_for_batches() -> PokeReturnValue:
    """Wait for batch files in the landing zone; return their URIs. A run triggered by hand does not wait."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_mlops_provider.core.io.datasets import is_dataset_file
    from airflow_mlops_provider.hooks.storage import ObjectStorageHook

    landing = ObjectStorageHook(None).get_conn().list(f"{data_dir()}/landing/")
    batches = [uri for uri in landing if is_dataset_file(uri)]
    if not batches and get_current_context()["dag_run"].run_type == "manual":
        raise AirflowSkipException("Triggered by hand, and no batch is in the landing zone: nothing to ingest")
    return PokeReturnValue(is_done=bool(batches), xcom_value=batches)


@task(trigger_rule=TriggerRule.ALL_DONE, outlets=[FEATURES_REFRESHED])
def archive_batches(
    batches: list[str] | None, ingested: list[dict[str, Any]] | dict[str, Any] | None
) -> dict[str, Any]:
    """Move the ingested batches out of the landing zone (a retry skips moved ones) and signal the new data.

    Runs whatever happened upstream, so that good batches are archived even when another fails; then
    fails if any task of the run failed or a batch is still in the landing zone un-ingested (quarantined
    batches have left it), and skips, emitting nothing, if no batch was ingested.
    """
    from pathlib import PurePosixPath

    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from airflow_mlops_provider.hooks.storage import ObjectStorageHook

    context = get_current_context()
    ti = context["ti"]
    store = ObjectStorageHook(None).get_conn()
    # Airflow hands a lone value of a mapped task group's task over unwrapped, and None for none.
    results = [ingested] if isinstance(ingested, dict) else [r for r in ingested or [] if r]
    archived = []
    for result in results:
        source = result["batch_uri"]
        target = f"{data_dir()}/ingested/{PurePosixPath(source).name}"
        if store.exists(source):
            store.write_bytes(target, store.read_bytes(source))
            store.delete(source, missing_ok=True)
        archived.append(target)
    done = {result["batch_uri"] for result in results}
    left = sorted(uri for uri in batches or [] if uri not in done and store.exists(uri))
    failed = ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed", "upstream_failed"])
    if failed or left:
        raise AirflowFailException(
            f"{failed} task(s) of this run failed; {len(left)} batch(es) not ingested, left in the landing zone: {left}"
        )
    if not results:
        raise AirflowSkipException(f"No batch ingested ({len(batches or [])} quarantined): nothing new to signal")
    summary = {"batches": [r["batch_id"] for r in results], "rows": sum(r["rows"] for r in results)}
    context["outlet_events"][FEATURES_REFRESHED].extra = summary
    return {**summary, "archived": archived, "quarantined": len(batches or []) - len(results)}


@task_group  # type: ignore[type-var]  # returning the XComArg of the last task is supported at run time
def process_batch(batch_uri: str) -> XComArg:
    """Validate one batch, then ingest it; a batch that fails validation is quarantined and not ingested."""
    validate = DataValidationOperator(
        task_id="validate_batch",
        dataset=batch_uri,
        suite_path="expectations/churn_raw_batch.json",
        on_failure="quarantine",
    )
    ingest = FeatureIngestionOperator(
        task_id="ingest_batch",
        feature_view=FEATURE_VIEW,
        batch_uri=batch_uri,
        outlets=[feature_view_asset(FEATURE_VIEW)],
        retries=2,
        # One at a time: materialization writes the registry file and the sqlite online store.
        max_active_tis_per_dag=1,
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
):
    apply = FeastApplyOperator(task_id="apply_feature_definitions", model_name=MODEL_NAME)
    batches = wait_for_batches()
    apply >> batches
    ingested = process_batch.expand(batch_uri=batches)
    archive_batches(batches, ingested)  # type: ignore[arg-type]  # XComArgs resolve to lists at run time
