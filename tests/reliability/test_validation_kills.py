"""A validation killed in the middle of quarantining, then retried, quarantines each failing batch exactly once.

The task runs in a fresh interpreter, as a worker would, through the core functions the gate calls in its
order: a batch no longer where it landed is looked up in quarantine, any other is read, validated, and
quarantined if it fails. It is SIGKILLed at a seeded ``validation.*`` failpoint (after the result is
computed, after the batch's copy, after its result file) and retried. Afterwards each failing batch is in
quarantine once, whole, with its result beside it; the good batch is untouched; nothing else was written.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from airflow_mlops_provider.core.validation.quarantine import RESULT_SUFFIX
from tests.fixtures.task_server import TaskServer
from tests.reliability.killing import run_with_retries

CORPUS = Path(__file__).parent / "bad_inputs" / "validation"
POINTS = (
    "validation.before_quarantine",
    "validation.after_quarantine_copy",
    "validation.after_quarantine_result",
    "validation.after_quarantine",
)
BATCHES = {"good": "good.csv", "bad_types": "wrong_types.csv", "bad_nulls": "all_nan.csv"}
#: (point, hit): every point once, the hit drawn from the two quarantines of a run.
_rng = random.Random(20261203)
KILLS = [(point, _rng.randint(1, 2)) for point in POINTS]

TASK = """
import json, sys
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.validation import suites
from airflow_mlops_provider.core.validation.quarantine import quarantine_batch, quarantined_result
from airflow_mlops_provider.core.io.datasets import read_batch

batches, suite_path, quarantine = {batches!r}, {suite!r}, {quarantine!r}
store = ObjectStore()
suite = suites.load_suite(store.read_bytes(suite_path))
for uri in batches:
    if not store.exists(uri):
        recorded = quarantined_result(uri, quarantine, store)
        assert recorded is not None, f"{{uri}} is lost"
        print("already in quarantine:", uri)
        continue
    frame = read_batch(uri, store)
    result = suites.summarize(suites.run_suite(frame, suite), len(frame))
    if not result.success:
        quarantine_batch(uri, quarantine, {{**result.to_record(), "dataset_uri": uri}}, store)
        print("quarantined:", uri)
"""


@pytest.mark.parametrize(("point", "hit"), KILLS, ids=[f"{point}:{hit}" for point, hit in KILLS])
def test_a_killed_quarantine_is_retried_to_exactly_once(
    point: str, hit: int, tmp_path: Path, task_server: TaskServer
) -> None:
    landing, quarantine = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    uris = {name: str(shutil.copy(CORPUS / file, landing / f"{name}.csv")) for name, file in BATCHES.items()}
    originals = {name: Path(uri).read_bytes() for name, uri in uris.items()}
    script = TASK.format(batches=list(uris.values()), suite=str(CORPUS / "suite.json"), quarantine=str(quarantine))

    attempts = run_with_retries(task_server, script, point, hit, tmp_path / "failpoints")

    assert attempts.killed == 1 and attempts.codes[-1] == 0, (attempts.codes, attempts.output)
    if point == "validation.after_quarantine":  # the retry finds the moved batch's result, and does not redo it
        assert "already in quarantine:" in attempts.output, attempts.output
    assert sorted(p.name for p in landing.iterdir()) == ["good.csv"]
    assert Path(uris["good"]).read_bytes() == originals["good"], "the good batch is untouched"
    bad = ("bad_nulls", "bad_types")
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(
        name for b in bad for name in (f"{b}.csv", f"{b}.csv{RESULT_SUFFIX}")
    ), "each failing batch once, with its result, and nothing else"
    for name in bad:
        assert (quarantine / f"{name}.csv").read_bytes() == originals[name], "the quarantined copy is whole"
        result = json.loads((quarantine / f"{name}.csv{RESULT_SUFFIX}").read_text())
        assert result["success"] is False and result["dataset_uri"] == uris[name]
        assert result["failures"], result
