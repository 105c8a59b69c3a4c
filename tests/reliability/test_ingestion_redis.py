"""The Feast online store's Redis fails in the middle of an ingestion: hung (SIGSTOP), then stopped.

A private ``redis-server`` on a free loopback port serves the online store of a real feature repo (the
shared server on 6379 is never touched). Each time the task fails within the bounded client timeouts, with
a message naming the server, after writing the offline parts; once Redis is back, the retry completes, every
batch's rows are offline exactly once and the online store serves the newest values.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from airflow_mlops_provider.core.features.feast_repo import REDIS_TIMEOUTS, apply_repo, load_repo, open_store
from airflow_mlops_provider.core.features.ingestion import MaterializationError
from airflow_mlops_provider.operators.features import FeatureIngestionOperator
from demo import data as demo_data
from tests.fixtures.feast_repo import copy_feature_repo
from tests.fixtures.mlflow_server import free_port

pytestmark = pytest.mark.integration
T0 = pd.Timestamp("2024-07-01T00:00Z")
FEATURES = [*demo_data.FEATURES_NUMERIC, *demo_data.FEATURES_CATEGORICAL]
#: The longest a failed attempt may take: both client timeouts once (the client does not retry), plus Feast's
#: own work on a busy machine. With redis-py's default 3 retries a hung server took 43 s.
WORST_CASE = sum(REDIS_TIMEOUTS.values()) + 20


class RedisServer:
    """A private ``redis-server`` on ``port``, without persistence, in ``folder``."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True,
                             check=False).stdout.strip() != "PONG":  # fmt: skip
            assert time.monotonic() < deadline, f"redis-server on port {self.port} did not start"
            time.sleep(0.2)

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)

    def hang(self) -> None:
        """Freeze the server: it still accepts connections (the kernel does) but never replies."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a frozen server run again."""
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """Stop the server and wait until it is gone: Redis ends on SIGTERM only at its next cron tick."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_repo(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo feature repo with its online store on the private Redis; ``feast_default`` points at it."""
    monkeypatch.delenv("MLOPS_FEATURE_DATA_URI", raising=False)
    repo = copy_feature_repo(tmp_path / "feature_repo")
    config = (
        (repo / "feature_store.yaml")
        .read_text()
        .replace(
            "online_store:\n  type: sqlite\n  path: data/online_store.db",
            f"online_store:\n  type: redis\n  connection_string: 127.0.0.1:{redis_server.port},db=0",
        )
    )
    (repo / "feature_store.yaml").write_text(config)
    store = open_store(str(repo))
    apply_repo(store, load_repo(store, str(repo)))
    monkeypatch.setenv("AIRFLOW_CONN_FEAST_DEFAULT", f'{{"conn_type": "feast", "extra": {{"repo_path": "{repo}"}}}}')
    return repo


def ingest(uris: list[str]) -> dict[str, Any]:
    context: Any = {"ti": SimpleNamespace(xcom_push=lambda **_: None), "outlet_events": defaultdict(SimpleNamespace)}
    operator = FeatureIngestionOperator(task_id="ingest_batches", feature_view="customer_stats", batch_uri=uris)
    return operator.execute(context)  # type: ignore[return-value]


def test_redis_hung_then_stopped_fails_fast_naming_it_and_the_retry_completes(
    redis_repo: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    ids = demo_data.generate_batch(200, T0, seed=1)["customer_id"].tolist()
    uris = []
    for day in range(3):
        path = tmp_path / f"day-{day}.parquet"
        demo_data.generate_batch(200, T0 + pd.Timedelta(days=day), seed=day).assign(customer_id=ids).to_parquet(path)
        uris.append(str(path))
    where = f"redis at 127.0.0.1:{redis_server.port}"

    # A hung server, then a stopped one that comes back on the same port, empty: the retry must fill it.
    server = redis_server
    faults = ((server.hang, "Timeout", server.resume), (server.kill, "Connection", server.start))
    for fault, error, recover in faults:
        fault()
        started = time.monotonic()
        with pytest.raises(MaterializationError, match=rf"into the online store \({where}\) failed: \w*{error}"):
            ingest(uris)
        assert time.monotonic() - started < WORST_CASE, "the client's timeouts bound the failure"
        recover()

    result = ingest(uris)
    assert [batch["batch_uri"] for batch in result["batches"]] == uris
    parts = sorted((redis_repo / "data" / "offline" / "customer_stats").glob("*.parquet"))
    offline = pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
    assert [p.name for p in parts] == ["part-day-0.parquet", "part-day-1.parquet", "part-day-2.parquet"]
    assert len(offline) == 600 and not offline.duplicated(["customer_id", "event_timestamp"]).any()
    newest = pd.read_parquet(uris[-1]).set_index("customer_id")
    online = (
        open_store(str(redis_repo))
        .get_online_features(
            features=[f"customer_stats:{name}" for name in FEATURES], entity_rows=[{"customer_id": i} for i in ids]
        )
        .to_df()
        .set_index("customer_id")
    )
    assert online.loc[ids, "plan"].tolist() == newest.loc[ids, "plan"].tolist()
    assert (abs(online.loc[ids, "usage_gb"] - newest.loc[ids, "usage_gb"]) < 1e-3).all()
