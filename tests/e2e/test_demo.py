"""End to end: ``python -m demo`` runs the whole continuous-training loop, then leaves nothing behind.

The loop: batches ingested into Feast (a corrupt one quarantined with its Data Docs), a first model trained
on a point-in-time training set, drifted batches ingested, drift found by the drift monitor, and retraining
started by the scheduler on the drift asset event.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.paths import REPO

DEMO_TIMEOUT = 1700

pytestmark = pytest.mark.e2e


def run_demo(home: Path) -> tuple[int, str]:
    """Run the demo with ``DEMO_EXIT=1``; on timeout interrupt it (so it still cleans up) and fail.

    :param home: the demo's state directory.
    """
    env = os.environ | {"DEMO_HOME": str(home), "DEMO_EXIT": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "demo"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=DEMO_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=120)
            pytest.fail(f"demo did not finish within {DEMO_TIMEOUT}s:\n{output[-20000:]}")
    return proc.returncode, output


def survivors(sessions: list[int], home: Path) -> list[str]:
    """Live processes of the demo's server sessions, or whose environment mentions its state directory.

    :param sessions: the servers' session ids, from ``stack.json``.
    :param home: the demo's state directory.
    """
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            in_session = os.getsid(proc.pid) in sessions
            if in_session or any(str(home) in value for value in proc.environ().values()):
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
        except (psutil.Error, OSError):
            continue
    return found


def listening(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port``.

    :param port: the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(DEMO_TIMEOUT + 300)
def test_demo_runs_the_loop_and_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "demo"

    code, output = run_demo(home)

    assert code == 0, output[-20000:]
    tail = output[-20000:]
    # Ingestion: four good batches, one quarantined with what failed and a link to its Data Docs.
    assert "ingested 4 batch(es) into Feast; quarantined 1" in output, tail
    quarantined = re.search(r"Quarantined (partner_feed_\d+\.parquet).*?Data Docs: (file://\S+\.html)", output, re.S)
    assert quarantined, tail
    assert (home / "data" / "quarantine" / quarantined.group(1)).is_file()
    assert Path(quarantined.group(2).removeprefix("file://")).is_file()
    offline = home / "data" / "feature_store" / "offline"
    assert not list(offline.rglob("*partner_feed*")), "a quarantined batch is not ingested"
    # The first drift check has no champion to compare with; the second finds the drift and links its report.
    assert "skipped: model 'churn' has no version aliased 'champion'" in output, tail
    report = re.search(r"DRIFT: \d+ of \d+ columns drifted.*\n  Drift report: (file://\S+)", output)
    assert report and Path(report.group(1).removeprefix("file://")).is_file(), tail
    # Retraining was started by the scheduler on the drift asset, and decided with a reason.
    assert "The scheduler started retraining on the churn_drift asset event" in output, tail
    assert len(re.findall(r"^  version \d+ (promoted|rejected): \S", output, re.MULTILINE)) == 2, tail
    # Every version names its feature service and training-set digest.
    assert len(re.findall(r"^      mlops\.feature_service = churn_v1$", output, re.MULTILINE)) >= 2, tail
    assert len(re.findall(r"^      mlops\.dataset_digest = [0-9a-f]{16,}$", output, re.MULTILINE)) >= 2, tail
    assert re.search(r"^champion: version \d+", output, re.MULTILINE), tail
    stack = json.loads((home / "stack.json").read_text())
    assert survivors(stack["sessions"], home) == []
    ports = stack["mlflow"]["ports"] + stack["airflow"]["ports"]
    assert [port for port in ports if listening(port)] == []
