"""End to end, embedded profile: ``python -m demo`` runs the whole continuous-training loop on SQLite,
``airflow standalone`` and local data, then leaves nothing behind.

The loop: batches ingested into Feast (a corrupt one quarantined with its Data Docs), a first model trained
on a point-in-time training set, drifted batches ingested, drift found by the drift monitor, and retraining
started by the scheduler on the drift asset event.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.story import DEMO_TIMEOUT, check_story, listening, run_demo, survivors

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(DEMO_TIMEOUT + 300)
def test_demo_runs_the_loop_and_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "demo"

    code, output = run_demo(home)

    assert code == 0, output[-20000:]
    shown = check_story(output)
    data = home / "data"
    assert (data / "quarantine" / shown["batch"]).is_file()
    assert Path(shown["docs"].removeprefix("file://")).is_file()
    assert Path(shown["report"].removeprefix("file://")).is_file()
    assert not list((data / "feature_store" / "offline").rglob("*partner_feed*")), "a quarantined batch is not ingested"
    stack = json.loads((home / "stack.json").read_text())
    assert stack["profile"] == "embedded"
    assert survivors(stack["sessions"], home) == []
    assert [port for port in stack["ports"] if listening(port)] == []
