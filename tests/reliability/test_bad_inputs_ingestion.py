"""The ingestion area's bad-input corpus (tests/reliability/bad_inputs/ingestion/cases.json), fed to
``FeatureIngestionOperator`` as the ``feature_ingestion`` DAG runs it, against a real Feast repo.

Each case must fail the task without retry, with its message, before anything of the refused batch is
written: no offline part, no online value, and the batch file is left as it was.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider.core.features.feast_repo import open_store
from airflow_mlops_provider.operators.features import FeatureIngestionOperator

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent / "bad_inputs" / "ingestion"
CASES = json.loads((CORPUS / "cases.json").read_text())
#: The feature view of each case; all but one feed the demo's view.
VIEWS = {"unknown_feature_view": "no_such_view"}
#: The good batch fed along with the bad one, in the chunk cases.
CHUNKED = {"duplicate_keys_in_a_chunk": "good.parquet"}


class _TI:
    dag_id, run_id, task_id, try_number, map_index = "feature_ingestion", "bad_inputs", "ingest_batches", 1, 0

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def test_the_corpus_covers_the_ingestion_checks() -> None:
    assert len(CASES) >= 8 and len({case["case"] for case in CASES}) == len(CASES)
    assert all((CORPUS / case["input"]).is_file() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_a_bad_batch_is_refused_clearly_and_writes_nothing(
    case: dict[str, Any], feast_repo: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    batch = str(shutil.copy(CORPUS / case["input"], landing / case["input"]))
    before = Path(batch).read_bytes()
    good = CHUNKED.get(case["case"])
    uris: str | list[str] = [str(shutil.copy(CORPUS / good, landing / good)), batch] if good else batch
    operator = FeatureIngestionOperator(
        task_id="ingest_batches", feature_view=VIEWS.get(case["case"], "customer_stats"), batch_uri=uris
    )
    context: Any = {"ti": _TI(), "outlet_events": defaultdict(lambda: SimpleNamespace(extra={}))}
    with pytest.raises(AirflowFailException) as raised:
        operator.execute(context)

    assert type(raised.value).__name__ == case["error"]
    assert re.search(case["match"], str(raised.value)), str(raised.value)
    assert Path(batch).read_bytes() == before, "the refused batch stays as it was"
    parts = sorted(p.name for p in (feast_repo / "data" / "offline" / "customer_stats").glob("*.parquet"))
    assert parts == ([f"part-{Path(good).stem}.parquet"] if good else []), parts
    if good:
        recorded = context["ti"].xcom["return_value"]
        assert [b["batch_id"] for b in recorded["batches"]] == ["good"] and list(recorded["refused"]) == [batch]
    else:
        ids = pd.read_parquet(CORPUS / "good.parquet")["customer_id"].tolist()  # the corpus' customers
        online = open_store(str(feast_repo)).get_online_features(
            features=["customer_stats:tenure_months"], entity_rows=[{"customer_id": i} for i in ids]
        )
        assert online.to_dict()["tenure_months"] == [None] * len(ids), "nothing reached the online store"
