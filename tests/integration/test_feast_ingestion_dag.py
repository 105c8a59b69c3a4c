"""The feature_ingestion DAG under ``dag.test()``: gate, quarantine, ingestion and archiving, run by Airflow.

Real components throughout: the DAG as the DAG processor loads it, a Feast repo, the GX gate, the
session's ``mlflow server`` (for the apply guard), and Airflow's own handling of the mapped task group's
output, of the failed task instances of the run and of asset events. Three manual runs share one Airflow
home: a run with two good batches, a broken and an un-ingestible one, spread over two chunks; once the
latter is removed, a run with a lone good batch; a run with nothing landed.
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
    run = dag.test(run_conf=staged.get("conf"))
    states = {}
    for ti in sorted(run.get_task_instances(), key=lambda ti: ti.map_index):
        states.setdefault(ti.task_id, []).append(ti.state)
    with create_session() as session:
        def xcoms(task_id):
            query = XComModel.get_many(run_id=run.run_id, key="return_value", task_ids=task_id, map_indexes=None)
            return {x.map_index: XComModel.deserialize_value(x) for x in session.scalars(query)}
        def events(uri):
            return [event.extra for event in session.scalars(
                select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == uri, AssetEvent.source_run_id == run.run_id)
            )]
        print("RUN=" + json.dumps({
            "states": states,
            "validated": xcoms("ingest_chunk.validate_batches"),
            "archived": xcoms("archive_batches"),
            "events": events("mlops://features/churn/refreshed"),
            "view_events": events("feast://feature_views/customer_stats"),
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
        {
            "add": [stage(staging / "1", name, frame) for name, frame in first],
            "remove": [],
            "conf": {"ingestion_tasks": 2},
        },
        {"add": [stage(staging / "2", "2024-05-04.parquet", lone)], "remove": ["2024-05-03.csv"]},
        {"add": [], "remove": []},
    ]
    stdout, output = run_in_airflow(
        tmp_path / "airflow", data_dir, RUN_DAG, str(DAGS), str(data_dir / "landing"), json.dumps(runs)
    )
    printed = [json.loads(line[4:]) for line in stdout.splitlines() if line.startswith("RUN=")]
    assert len(printed) == 3, output[-20000:]
    mixed, single, empty = printed

    # Run 1, two chunks: the broken batch is quarantined on its own and its chunk's good batch ingested; the naive
    # one fails ingestion and stays, and its chunk's good batch is ingested; both good ones are archived.
    assert mixed["states"] == {
        "apply_feature_definitions": ["success"],
        "wait_for_batches": ["success"],
        "split_batches": ["success"],
        "ingest_chunk.validate_batches": ["success", "success"],
        "ingest_chunk.ingest_batches": ["success", "failed"],
        "archive_batches": ["failed"],
    }, output[-20000:]
    landing = f"{data_dir}/landing"
    gate: dict[str, Any] = mixed["validated"]["0"]
    assert (gate["passed"], gate["quarantined"]) == (
        [f"{landing}/2024-05-01.parquet"],
        [f"{landing}/2024-05-02.parquet"],
    )
    quarantined = gate["records"][1]
    assert quarantined["success"] is False and "plan" in quarantined["message"], quarantined
    assert quarantined["docs_uri"].endswith(".2024-05-02.parquet.html")  # its own Data Docs
    assert mixed["validated"]["1"]["passed"] == [f"{landing}/2024-05-03.csv", f"{landing}/2024-05-05.parquet"]
    assert (mixed["archived"], mixed["events"]) == ({}, [])
    assert mixed["view_events"] == [{"batches": [{"batch_id": "2024-05-01", "rows": 400}], "rows": 400}]
    assert "1 of 2 batch(es) not ingested" in output and "naive timestamps" in output
    assert "1 task(s) of this run failed; 1 batch(es) not ingested" in output
    assert sorted(p.name for p in (data_dir / "quarantine").iterdir()) == [
        "2024-05-02.parquet",
        f"2024-05-02.parquet{RESULT_SUFFIX}",
    ]

    # Run 2, the un-ingestible batch removed: the lone batch's result reaches the archive task as one value.
    assert single["states"]["ingest_chunk.ingest_batches"] == ["success"], output[-20000:]
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
    assert single["view_events"] == [{"batches": [{"batch_id": "2024-05-04", "rows": 300}], "rows": 300}]

    # Run 3: nothing landed; a manual run does not wait, and nothing is signalled.
    assert empty["states"]["wait_for_batches"] == ["skipped"], output[-20000:]
    assert empty["states"]["archive_batches"] == ["skipped"]
    assert empty["events"] == []
    ingested = sorted(p.name for p in (data_dir / "ingested").iterdir())
    assert ingested == ["2024-05-01.parquet", "2024-05-04.parquet", "2024-05-05.parquet"]
    assert not list((data_dir / "landing").iterdir())
    parts = sorted(p.name for p in (feast_repo / "data" / "offline").rglob("part-*.parquet"))
    assert parts == ["part-2024-05-01.parquet", "part-2024-05-04.parquet", "part-2024-05-05.parquet"]
