"""End to end, prod profile: the same story through the scheduler and two Celery workers, with PostgreSQL for
Airflow, MLflow and Feast's registry, Redis for the broker and the online store, and every byte of data in S3.

Beyond the embedded checks, it inspects the live stack before stopping it: mapped ingestion on both workers
at once, no duplicate offline rows, the newest values online, every artifact in S3 and none on local disk,
and run states, asset events and the promotion decision read from PostgreSQL through the REST API.

With ``CI=true`` a missing PostgreSQL or Redis fails the test; elsewhere it skips, naming what is missing.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops_provider.core.io.storage import ObjectStore
from demo.api import AirflowApi
from demo.services import Services
from tests.e2e.story import DEMO_TIMEOUT, LiveDemo, check_story

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(DEMO_TIMEOUT + 300)]

INGESTION, TRAINING = "feature_ingestion", "continuous_training"
#: A worker's record of each task it ran: ``Executing workload in Celery: ... log_path='dag_id=.../...'``.
WORKLOAD = re.compile(
    r"Executing workload in Celery: .*?log_path='dag_id=([^/]+)/run_id=([^/]+)/task_id=([^/]+)/(?:map_index=(\d+)/)?"
)
ENTITY, TIME = "customer_id", "event_timestamp"
FEATURES = ("tenure_months", "monthly_charges", "support_calls", "usage_gb", "plan", "region")


def test_the_story_completes_with_artifacts_only_in_s3(
    live: tuple[LiveDemo, Path], stack: dict[str, Any], store: ObjectStore
) -> None:
    demo, home = live
    shown = check_story(demo.output)
    data = f"s3://{stack['s3']['bucket']}"
    assert stack["data_dir"] == data
    keys = store.list(f"{data}/")
    assert f"{data}/quarantine/{shown['batch']}" in keys
    assert shown["docs"].startswith(stack["s3"]["AWS_ENDPOINT_URL"]), shown
    assert any(key.endswith(".html") and "/validation/" in key for key in keys), keys
    assert shown["report"].startswith(f"{data}/drift_reports/") and shown["report"] in keys
    for folder in ("ingested", "training_sets", "drift_state", "feature_store/offline/customer_stats"):
        assert any(key.startswith(f"{data}/{folder}/") for key in keys), (folder, keys)
    assert not [key for key in keys if key.startswith(f"{data}/landing/") and key.endswith(".parquet")]
    assert store.list(f"s3://{stack['s3']['artifacts_bucket']}/"), "MLflow's artifacts are in S3"
    # Nothing but logs and the servers' own state on local disk.
    local = [path for path in home.rglob("*") if path.suffix in {".parquet", ".html", ".csv", ".pt", ".pkl"}]
    assert local == []
    assert not (home / "data").exists()


def test_mapped_ingestion_ran_on_both_workers_at_once(stack: dict[str, Any], api: AirflowApi) -> None:
    ran_by: dict[tuple[str, str, str, int], str] = {}
    for worker, log in stack["worker_logs"].items():
        for match in WORKLOAD.finditer(Path(log).read_text(errors="replace")):
            dag_id, run_id, task_id, map_index = match.groups()
            ran_by[(dag_id, run_id, task_id, int(map_index or -1))] = worker
    overlapping = []
    for run in api.dag_runs(INGESTION):
        mapped = [ti for ti in api.task_instances(INGESTION, run["dag_run_id"]) if ti["map_index"] >= 0]
        spans = [
            (ran_by.get((INGESTION, run["dag_run_id"], ti["task_id"], ti["map_index"])), _span(ti))
            for ti in mapped
            if ti["start_date"] and ti["end_date"]
        ]
        overlapping += [
            (a, b)
            for i, (worker_a, a) in enumerate(spans)
            for worker_b, b in spans[i + 1 :]
            if worker_a and worker_b and worker_a != worker_b and a[0] < b[1] and b[0] < a[1]
        ]
    assert set(ran_by.values()) == set(stack["worker_logs"]), ran_by
    assert overlapping, "no two mapped ingestion tasks of one run ran on different workers at the same time"


def test_the_celery_workers_hold_the_task_libraries(stack: dict[str, Any]) -> None:
    """``preload_celery``: each worker imported torch (and the rest) on ``worker_init``, before it forked its
    pool. A worker process never runs a task (each task is a process forked from a pool process), so torch
    in it comes from the preload."""
    import psutil

    titles: dict[int, str] = {}  # Celery retitles its processes: "[celeryd: worker1@host:MainProcess] ..."
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if os.getsid(proc.pid) in stack["sessions"] and "[celeryd:" in (title := " ".join(proc.cmdline())):
                titles[proc.pid] = title
    workers = [pid for pid, title in titles.items() if ":MainProcess]" in title]
    assert len(workers) == len(stack["worker_logs"]), titles
    for pid in workers:
        assert "libtorch" in Path(f"/proc/{pid}/maps").read_text(), titles[pid]


def _span(ti: dict[str, Any]) -> tuple[datetime, datetime]:
    """A task instance's start and end."""
    return datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])


def test_offline_rows_are_unique_and_online_values_are_the_newest(stack: dict[str, Any], store: ObjectStore) -> None:
    import pandas as pd
    import yaml

    from airflow_mlops_provider.core.features.feast_repo import open_store

    parts = [uri for uri in store.list(f"s3://{stack['s3']['bucket']}/feature_store/offline/customer_stats/")]
    offline = pd.concat([pd.read_parquet(io.BytesIO(store.read_bytes(uri))) for uri in parts], ignore_index=True)
    assert len(parts) == 6 and not [uri for uri in parts if "partner_feed" in uri], parts
    assert not offline.duplicated([ENTITY, TIME]).any()
    newest = offline.sort_values(TIME).groupby(ENTITY).tail(1).set_index(ENTITY)
    sample = newest.sample(25, random_state=7)
    feast = open_store(stack["feast_repo"], yaml.safe_dump(stack["feast_config"]))
    online = feast.get_online_features(
        features=[f"customer_stats:{name}" for name in FEATURES],
        entity_rows=[{ENTITY: int(entity)} for entity in sample.index],
    ).to_df()
    online = online.set_index(ENTITY).loc[sample.index]
    for name in FEATURES:
        assert online[name].tolist() == pytest.approx(sample[name].tolist()), name


def test_runs_asset_events_and_decisions_come_from_postgres(
    services: Services, stack: dict[str, Any], api: AirflowApi
) -> None:
    runs = api.dag_runs(TRAINING)
    story = [run for run in runs if run["dag_run_id"].startswith(("demo__", "asset_triggered"))]
    assert len(story) >= 2 and {run["state"] for run in story} == {"success"}, story
    events = api.asset_events("churn_drift")
    assert events and all(event["source_dag_id"] == "drift_monitor" for event in events), events
    decisions = []
    for run in runs:
        promote = [ti for ti in api.task_instances(TRAINING, run["dag_run_id"]) if ti["task_id"] == "promote_model"]
        decisions += [api.xcom(ti) for ti in promote if ti["state"] == "success"]
    assert len(decisions) >= 2 and all(d["reason"] and isinstance(d["promote"], bool) for d in decisions)
    airflow_db = stack["postgres"]["databases"]["airflow"]
    with contextlib.closing(services.connect_postgres(airflow_db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM dag_run WHERE dag_id = %s", (TRAINING,))
        (count,) = cur.fetchone()
    assert count == len(runs)
