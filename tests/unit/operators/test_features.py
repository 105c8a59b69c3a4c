"""ArchiveBatchesOperator on local files: archive, then fail, skip or signal, whatever form its input takes.

The run's failed task instances come from ``ti.get_ti_count``; the stand-in task instance answers it. A
real run of the DAG (tests/integration/test_feast_ingestion_dag.py) checks the same against Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider.contracts import BatchesIngestedResult, IngestionResult, features_refreshed_asset
from airflow_mlops_provider.operators.features import ArchiveBatchesOperator
from tests.fixtures.task_context import RuntimeTaskInstance

REFRESHED = features_refreshed_asset("churn")


@dataclass
class RunTaskInstance(RuntimeTaskInstance):
    """A task instance whose run has ``failed`` failed or upstream-failed task instances."""

    failed: int = 0

    def get_ti_count(self, dag_id: str, run_ids: list[str], states: list[str]) -> int:
        assert (dag_id, run_ids, sorted(states)) == (self.dag_id, [self.run_id], ["failed", "upstream_failed"])
        return self.failed


class OutletEvents(dict[Any, SimpleNamespace]):
    """Stand-in for ``context["outlet_events"]``: an accessor with an ``extra`` dict per asset."""

    def __missing__(self, asset: Any) -> SimpleNamespace:
        self[asset] = SimpleNamespace(extra={})
        return self[asset]


@pytest.fixture
def landing(tmp_path: Path) -> list[str]:
    """Three landed batches: a, b and c."""
    (tmp_path / "landing").mkdir()
    uris = [str(tmp_path / "landing" / name) for name in ("a.parquet", "b.csv", "c.parquet")]
    for uri in uris:
        Path(uri).write_text(uri)
    return uris


def ingested(uri: str, rows: int) -> IngestionResult:
    batch_id = Path(uri).stem
    return IngestionResult(
        feature_view="customer_stats", batch_id=batch_id, batch_uri=uri, part_uri=f"/offline/part-{batch_id}.parquet",
        rows=rows, start="2024-05-01T00:00:00+00:00", end="2024-05-02T00:00:00+00:00",
    )  # fmt: skip


def archive(
    tmp_path: Path, batches: Any, results: Any, failed: int = 0, events: OutletEvents | None = None
) -> tuple[Any, dict[str, Any] | None]:
    """Run the operator; return its result and the extra of its event (``None`` when it set none)."""
    operator = ArchiveBatchesOperator(
        task_id="archive_batches",
        batches=batches,
        ingested=results,
        archive_uri=f"{tmp_path}/ingested/",
        refreshed_asset=REFRESHED,
    )
    events = OutletEvents() if events is None else events
    context = {"ti": RunTaskInstance("feature_ingestion", "manual__1", "archive_batches", failed=failed)}
    result = operator.execute({**context, "outlet_events": events})  # type: ignore[arg-type]
    return result, events[REFRESHED].extra if REFRESHED in events else None


def test_ingested_batches_are_archived_and_signalled(tmp_path: Path, landing: list[str]) -> None:
    Path(landing[2]).unlink()  # c was quarantined: its ingestion was skipped, and pushed nothing
    results = [ingested(landing[1], 30), ingested(landing[0], 20)]

    result, event = archive(tmp_path, landing, results)
    assert result == {
        "batches": ["b", "a"],
        "rows": 50,
        "archived": [f"{tmp_path}/ingested/b.csv", f"{tmp_path}/ingested/a.parquet"],
        "quarantined": 1,
    }
    assert event == {"batches": ["b", "a"], "rows": 50}
    assert not list((tmp_path / "landing").iterdir())
    assert (tmp_path / "ingested" / "a.parquet").read_text() == landing[0]


def test_a_lone_result_is_taken_as_it_comes(tmp_path: Path, landing: list[str]) -> None:
    """Airflow hands a mapped group's output over unwrapped when a single instance pushed one."""
    Path(landing[1]).unlink()
    result, event = archive(tmp_path, landing[:2], ingested(landing[0], 20))
    assert (result["batches"], result["quarantined"], event) == (["a"], 1, {"batches": ["a"], "rows": 20})


def test_a_failed_task_fails_the_run_after_archiving_the_good_batches(tmp_path: Path, landing: list[str]) -> None:
    Path(landing[2]).unlink()
    with pytest.raises(AirflowFailException, match=r"^1 task\(s\) of this run failed; 1 batch\(es\) not ingested"):
        archive(tmp_path, landing, [ingested(landing[0], 20)], failed=1)
    assert (tmp_path / "ingested" / "a.parquet").is_file()
    assert Path(landing[1]).is_file(), "a batch that was not ingested stays in the landing zone"


def test_a_batch_left_in_the_landing_zone_fails_the_run(tmp_path: Path, landing: list[str]) -> None:
    results = [ingested(landing[0], 20), ingested(landing[2], 10)]
    with pytest.raises(AirflowFailException, match=rf"0 task\(s\) .* left in the landing zone: \['{landing[1]}'\]"):
        archive(tmp_path, landing, results)
    assert sorted(path.name for path in (tmp_path / "ingested").iterdir()) == ["a.parquet", "c.parquet"]


@pytest.mark.parametrize(
    ("quarantined", "results"),
    [
        (["q.parquet"], None),  # every batch quarantined: no ingestion pushed a result
        ([], None),  # nothing landed: the sensor was skipped, and so was the mapped group
    ],
)
def test_nothing_ingested_skips_without_an_event(tmp_path: Path, quarantined: list[str], results: Any) -> None:
    events = OutletEvents()
    batches = [str(tmp_path / "landing" / name) for name in quarantined] or None
    with pytest.raises(AirflowSkipException, match=rf"No batch ingested \({len(quarantined)} quarantined\)"):
        archive(tmp_path, batches, results, events=events)
    assert REFRESHED not in events


def test_the_batches_of_chunk_results_are_archived_one_by_one(tmp_path: Path, landing: list[str]) -> None:
    """The DAG's mapped tasks each ingest a chunk: their results list the chunk's batches (one of them failed,
    having recorded the batch it did ingest before failing; the run fails, after archiving both)."""
    chunks = [
        BatchesIngestedResult(feature_view="customer_stats", batches=[ingested(landing[0], 20)], refused={}, rows=20),
        BatchesIngestedResult(
            feature_view="customer_stats", batches=[ingested(landing[2], 5)], refused={landing[1]: "naive"}, rows=5
        ),
    ]
    with pytest.raises(AirflowFailException, match=r"1 task\(s\) of this run failed; 1 batch\(es\) not ingested"):
        archive(tmp_path, landing, chunks, failed=1)
    assert sorted(p.name for p in (tmp_path / "ingested").iterdir()) == ["a.parquet", "c.parquet"]

    Path(landing[1]).unlink()  # the refused batch, removed by hand: the next run signals the others
    result, event = archive(tmp_path, landing, chunks)
    assert (result["batches"], result["rows"], event) == (["a", "c"], 25, {"batches": ["a", "c"], "rows": 25})
