"""Kill the ingestion of a chunk of batches at its failpoints and retry it, as Airflow retries a worker
killed there: after each retry every batch's rows are in the offline store exactly once, and the online
store serves the newest offline value of every customer.

The points: ``ingestion.between_batches`` (some parts written, others not) and
``ingestion.before_materialize`` (every part written, nothing materialized). The points and hits are drawn
from a seeded generator; each chunk updates customers of the earlier ones, so a stale online value shows.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.features.feast_repo import open_store
from demo import data as demo_data
from tests.fixtures.task_server import TaskServer
from tests.reliability.killing import run_with_retries

pytestmark = pytest.mark.integration

CHUNK = 4
KILLS = 6
FEATURES = [*demo_data.FEATURES_NUMERIC, *demo_data.FEATURES_CATEGORICAL]
T0 = pd.Timestamp("2024-06-01T00:00Z")
CUSTOMERS = 300

INGEST = """
import json, os
from collections import defaultdict
from types import SimpleNamespace
from airflow_mlops_provider.operators.features import FeatureIngestionOperator

class TI:
    dag_id, run_id, task_id, try_number, map_index = "feature_ingestion", "kills", "ingest_batches", 1, 0
    def xcom_push(self, key, value):
        pass

context = {"ti": TI(), "outlet_events": defaultdict(lambda: SimpleNamespace(extra={}))}
operator = FeatureIngestionOperator(
    task_id="ingest_batches", feature_view="customer_stats", batch_uri=json.loads(os.environ["KILL_BATCHES"])
)
print("RESULT=" + json.dumps(operator.execute(context)))
"""


def chunk(folder: Path, number: int, ids: list[int]) -> list[str]:
    """Write chunk ``number``: ``CHUNK`` batches of the same customers, each batch a day after the last."""
    uris = []
    for index in range(CHUNK):
        day = number * CHUNK + index
        batch = demo_data.generate_batch(len(ids), T0 + pd.Timedelta(days=day), seed=day).assign(customer_id=ids)
        path = folder / f"day-{day:03d}.parquet"
        batch.to_parquet(path)
        uris.append(str(path))
    return uris


def offline(repo: Path) -> pd.DataFrame:
    parts = sorted((repo / "data" / "offline" / "customer_stats").glob("*.parquet"))
    return pd.concat([pd.read_parquet(part).assign(part=part.name) for part in parts], ignore_index=True)


def test_a_killed_chunk_ingestion_retried_leaves_each_row_once_and_the_newest_online(
    feast_repo: Path, tmp_path: Path, task_server: TaskServer
) -> None:
    rng = random.Random(1411)
    ids = demo_data.generate_batch(CUSTOMERS, T0, seed=99)["customer_id"].tolist()
    env = {"AIRFLOW_CONN_FEAST_DEFAULT": json.dumps({"conn_type": "feast", "extra": {"repo_path": str(feast_repo)}})}
    landed: list[str] = []
    kills: list[tuple[str, int]] = []
    for number in range(KILLS):
        point = rng.choice(["ingestion.between_batches", "ingestion.before_materialize"])
        hit = rng.randint(1, CHUNK - 1) if point == "ingestion.between_batches" else 1
        batches = chunk(tmp_path, number, ids)
        attempts = run_with_retries(
            task_server,
            INGEST,
            point,
            hit,
            tmp_path / f"state-{number}",
            env={**env, "KILL_BATCHES": json.dumps(batches)},
        )
        assert attempts.killed == 1 and attempts.codes[-1] == 0, (point, hit, attempts.codes, attempts.output[-3000:])
        (line,) = [line for line in attempts.output.splitlines() if line.startswith("RESULT=")]
        result: dict[str, Any] = json.loads(line[len("RESULT=") :])
        assert [b["batch_uri"] for b in result["batches"]] == batches and result["refused"] == {}
        landed += batches
        kills.append((point, hit))

        stored = offline(feast_repo)
        expected = pd.concat([pd.read_parquet(uri) for uri in landed], ignore_index=True)
        assert len(stored) == len(expected) == len(landed) * CUSTOMERS, (point, hit)
        assert not stored.duplicated(["customer_id", "event_timestamp"]).any(), (point, hit)
        assert sorted(stored["part"].unique()) == sorted(f"part-{Path(uri).stem}.parquet" for uri in landed)
        newest = stored.sort_values("event_timestamp").groupby("customer_id").tail(1).set_index("customer_id")
        online = (
            open_store(str(feast_repo))
            .get_online_features(
                features=[f"customer_stats:{name}" for name in FEATURES], entity_rows=[{"customer_id": i} for i in ids]
            )
            .to_df()
            .set_index("customer_id")
        )
        for name in FEATURES:
            served, truth = online.loc[ids, name], newest.loc[ids, name]
            if served.dtype.kind == "f":
                assert (abs(served.to_numpy() - truth.to_numpy()) < 1e-3).all(), (point, hit, name)
            else:
                assert served.tolist() == truth.tolist(), (point, hit, name)
    assert len(kills) >= 5 and {point for point, _ in kills} == {
        "ingestion.between_batches", "ingestion.before_materialize"
    }, kills  # fmt: skip
