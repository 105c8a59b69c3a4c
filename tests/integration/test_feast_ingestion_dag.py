"""The feature_ingestion DAG under ``dag.test()``: gate, quarantine, ingestion and archiving, run by Airflow.

Real components throughout: the DAG as the DAG processor loads it, a Feast repo, the GX gate, the
session's ``mlflow server`` (for the apply guard), and Airflow's own handling of the mapped task group's
output, of the failed task instances of the run and of asset events. Three manual runs share one Airflow
home: a run with two good batches, a broken and an un-ingestible one; once the latter is removed, a run
with a lone good batch; a run with nothing landed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.validation.quarantine import RESULT_SUFFIX
from demo import data as demo_data
from tests.integration.test_ct_gate import run_in_airflow
from tests.paths import DAGS

pytestmark = pytest.mark.integration
T0 = pd.Timestamp("2024-05-01T00:00Z")

RUN_DAG = """
import json, shutil, sys
from pathlib import Path
from sqlalchemy import select
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

dags, landing, runs = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
dag = BundleDagBag(str(dags), bundle_path=dags).dags["feature_ingestion"]
for staged in runs:
    for name in staged["remove"]:
        (landing / name).unlink()
    for path in staged["add"]:
        shutil.move(path, landing / Path(path).name)
    run = dag.test()
    states = {}
    for ti in sorted(run.get_task_instances(), key=lambda ti: ti.map_index):
        states.setdefault(ti.task_id, []).append(ti.state)
    with create_session() as session:
        def xcoms(task_id):
            query = XComModel.get_many(run_id=run.run_id, key="return_value", task_ids=task_id, map_indexes=None)
            return {x.map_index: XComModel.deserialize_value(x) for x in session.scalars(query)}
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == "mlops://features/churn/refreshed", AssetEvent.source_run_id == run.run_id)
        )
        print("RUN=" + json.dumps({
            "states": states,
            "validated": xcoms("process_batch.validate_batch"),
            "archived": xcoms("archive_batches"),
            "events": [event.extra for event in events],
        }))
"""


def stage(folder: Path, name: str, frame: pd.DataFrame) -> str:
    """Write a batch (parquet or CSV, by its name) to ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return str(path)


def test_ingestion_runs_quarantine_fail_archive_and_signal(
    tmp_path: Path, feast_repo: Path, mlflow_connection: str
) -> None:
    data_dir, staging = tmp_path / "data", tmp_path / "staging"
    (data_dir / "landing").mkdir(parents=True)
    good = demo_data.generate_batch(400, T0, seed=1)
    second = demo_data.generate_batch(100, T0 + pd.Timedelta(days=4), seed=5)
    broken = demo_data.generate_batch(200, T0 + pd.Timedelta(days=1), seed=2).assign(plan="gold")
    naive = demo_data.generate_batch(100, T0 + pd.Timedelta(days=2), seed=3)
    naive["event_timestamp"] = naive["event_timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")  # passes GX, not Feast
    lone = demo_data.generate_batch(300, T0 + pd.Timedelta(days=3), seed=4)
    first = [
        ("2024-05-01.parquet", good),
        ("2024-05-02.parquet", broken),
        ("2024-05-03.csv", naive),
        ("2024-05-05.parquet", second),
    ]
    runs = [
        {"add": [stage(staging / "1", name, frame) for name, frame in first], "remove": []},
        {"add": [stage(staging / "2", "2024-05-04.parquet", lone)], "remove": ["2024-05-03.csv"]},
        {"add": [], "remove": []},
    ]
    stdout, output = run_in_airflow(
        tmp_path / "airflow", data_dir, RUN_DAG, str(DAGS), str(data_dir / "landing"), json.dumps(runs)
    )
    printed = [json.loads(line[4:]) for line in stdout.splitlines() if line.startswith("RUN=")]
    assert len(printed) == 3, output[-20000:]
    mixed, single, empty = printed

    # Run 1: the broken batch is quarantined, the naive one fails ingestion and stays, and the good ones (a list
    # of two results) are archived.
    assert mixed["states"] == {
        "apply_feature_definitions": ["success"],
        "wait_for_batches": ["success"],
        "process_batch.validate_batch": ["success", "skipped", "success", "success"],
        "process_batch.ingest_batch": ["success", "skipped", "failed", "success"],
        "archive_batches": ["failed"],
    }, output[-20000:]
    quarantined: dict[str, Any] = mixed["validated"]["1"]  # the one XCom of a quarantined batch: its result
    assert quarantined["success"] is False and quarantined["dataset_uri"].endswith("/landing/2024-05-02.parquet")
    assert (mixed["archived"], mixed["events"]) == ({}, [])
    assert "1 task(s) of this run failed; 1 batch(es) not ingested" in output
    assert sorted(p.name for p in (data_dir / "quarantine").iterdir()) == [
        "2024-05-02.parquet",
        f"2024-05-02.parquet{RESULT_SUFFIX}",
    ]

    # Run 2, the un-ingestible batch removed: the lone batch's result reaches the archive task as one value.
    assert single["states"]["process_batch.ingest_batch"] == ["success"], output[-20000:]
    assert single["states"]["archive_batches"] == ["success"]
    assert single["archived"] == {
        "-1": {
            "batches": ["2024-05-04"],
            "rows": 300,
            "archived": [f"{data_dir}/ingested/2024-05-04.parquet"],
            "quarantined": 0,
        }
    }
    assert single["events"] == [{"batches": ["2024-05-04"], "rows": 300}]

    # Run 3: nothing landed; a manual run does not wait, and nothing is signalled.
    assert empty["states"]["wait_for_batches"] == ["skipped"], output[-20000:]
    assert empty["states"]["archive_batches"] == ["skipped"]
    assert empty["events"] == []
    ingested = sorted(p.name for p in (data_dir / "ingested").iterdir())
    assert ingested == ["2024-05-01.parquet", "2024-05-04.parquet", "2024-05-05.parquet"]
    assert not list((data_dir / "landing").iterdir())
