"""Feature ingestion: raw batches in the landing zone -> checked, appended to Feast's offline store -> online."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, PokeReturnValue, TriggerRule, task

from airflow_mlops_provider.operators.features import (
    FeastApplyOperator,
    FeatureIngestionOperator,
    feature_view_asset,
)

FEATURE_VIEW = "customer_stats"
MODEL_NAME = "churn"

DOC = """
### Feature ingestion into Feast

Raw batches (parquet or CSV files, one per batch, each holding `customer_id`, a time-zone-aware
`event_timestamp`, the features and the `churned` label) land in `[mlops] data_dir`/landing/.

1. **apply_feature_definitions** applies `dags/feature_repo` (entities, sources, feature views, feature
   services) to the registry: CI/CD for feature definitions. A change that would break the feature service
   of the `churn` model's champion fails here, with the reasons, and nothing is applied.
2. **wait_for_batches** waits (without holding a worker slot between pokes) until batches land; when none
   arrive before the next run, it is skipped.
3. **ingest_batch**, one mapped task per batch: checks the batch against the feature view (columns, dtypes,
   non-null entity keys, time-zone-aware timestamps), appends it to the offline store as one part file named
   by the batch id, and materializes it to the online store. A bad batch fails its task without retries,
   writes nothing and stays in the landing zone; the other batches go on. Each ingested batch is an event
   on the `customer_stats` Asset, with the batch id and row count.
4. **archive_batches** moves the ingested batches to `[mlops] data_dir`/ingested/ (the raw history, and the
   spine of point-in-time training sets: entity, timestamp, label), then fails the run if any batch failed.

Re-running is safe: re-ingesting a batch replaces its part file, so rows are never duplicated.
"""


def _data_dir() -> str:
    from airflow.sdk import conf

    return str(conf.get("mlops", "data_dir", fallback="/tmp/airflow-mlops")).rstrip("/")


@task.sensor(poke_interval=60, timeout=50 * 60, mode="reschedule", soft_fail=True)
def wait_for_batches() -> PokeReturnValue:
    """Wait for batch files in the landing zone; return their URIs."""
    from airflow_mlops_provider.core.feature_batches import is_batch_file
    from airflow_mlops_provider.hooks.storage import ObjectStorageHook

    landing = ObjectStorageHook(None).get_conn().list(f"{_data_dir()}/landing/")
    batches = [uri for uri in landing if is_batch_file(uri)]
    return PokeReturnValue(is_done=bool(batches), xcom_value=batches)


@task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
def archive_batches(batches: list[str], ingested: list[dict[str, Any]]) -> list[str]:
    """Move the ingested batches out of the landing zone (a retry skips moved ones); fail if any batch failed."""
    from pathlib import PurePosixPath

    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops_provider.hooks.storage import ObjectStorageHook

    store = ObjectStorageHook(None).get_conn()
    archived = []
    for result in ingested:
        source = result["batch_uri"]
        target = f"{_data_dir()}/ingested/{PurePosixPath(source).name}"
        if store.exists(source):
            store.write_bytes(target, store.read_bytes(source))
            store.delete(source, missing_ok=True)
        archived.append(target)
    failed = sorted(set(batches) - {result["batch_uri"] for result in ingested})
    if failed:
        raise AirflowFailException(f"{len(failed)} batch(es) not ingested, left in the landing zone: {failed}")
    return archived


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
    ingest = FeatureIngestionOperator.partial(
        task_id="ingest_batch",
        feature_view=FEATURE_VIEW,
        outlets=[feature_view_asset(FEATURE_VIEW)],
        retries=2,
        # One at a time: materialization writes the registry file and the sqlite online store.
        max_active_tis_per_dag=1,
    ).expand(batch_uri=batches)
    apply >> batches
    archive_batches(batches, ingest.output)  # type: ignore[arg-type]  # XComArgs resolve to lists at run time
