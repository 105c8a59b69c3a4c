"""What every profile's demo must show, and how the e2e tests run it and check that it left nothing behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.paths import REPO

DEMO_TIMEOUT = 1700
#: What the demo prints once the loop completed; without ``DEMO_EXIT`` the servers then stay up.
COMPLETED = "The continuous-training loop completed."


def run_demo(home: Path, **env: str) -> tuple[int, str]:
    """Run the demo with ``DEMO_EXIT=1``; on timeout interrupt it (so it still cleans up) and fail.

    :param home: the demo's state directory.
    :param env: more environment (e.g. ``DEMO_PROFILE``).
    """
    with _start(home, {"DEMO_EXIT": "1", **env}) as proc:
        try:
            output, _ = proc.communicate(timeout=DEMO_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=120)
            pytest.fail(f"demo did not finish within {DEMO_TIMEOUT}s:\n{output[-20000:]}")
    return proc.returncode, output


class LiveDemo:
    """The demo left running after its story (no ``DEMO_EXIT``), to inspect its servers; Ctrl-C stops it.

    :param home: the demo's state directory.
    :param env: more environment (e.g. ``DEMO_PROFILE``).
    """

    def __init__(self, home: Path, **env: str) -> None:
        self.proc = _start(home, env)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        """Everything it printed so far."""
        return "".join(self._lines)

    def wait_completed(self) -> None:
        """Wait until the story completed; fail with the output if the demo exits or times out first."""
        deadline = time.monotonic() + DEMO_TIMEOUT
        while COMPLETED not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(10)
                self.stop()
                pytest.fail(f"the demo did not complete its story:\n{self.output[-20000:]}")
            time.sleep(1)

    def stop(self) -> int:
        """Interrupt it as Ctrl-C does and return its exit code once it stopped everything."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=300)
        self._reader.join(10)
        return code


def _start(home: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m demo`` with its output piped.

    :param home: the demo's state directory.
    :param env: more environment.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "demo"],
        env=os.environ | {"DEMO_HOME": str(home), **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def check_story(output: str) -> dict[str, str]:
    """Assert what every profile's demo prints of the loop; return the quarantined batch, its Data Docs and
    the drift report as printed (``batch``, ``docs``, ``report``).

    :param output: the demo's output.
    """
    tail = output[-20000:]
    # Ingestion: four good batches, one quarantined with what failed and a link to its Data Docs.
    assert "ingested 4 batch(es) into Feast; quarantined 1" in output, tail
    quarantined = re.search(r"Quarantined (partner_feed_\d+\.parquet).*?Data Docs: (\S+\.html)", output, re.S)
    assert quarantined, tail
    # The first drift check has no champion to compare with; the second finds the drift and links its report.
    assert "skipped: model 'churn' has no version aliased 'champion'" in output, tail
    report = re.search(r"DRIFT: \d+ of \d+ columns drifted.*\n  Drift report: (\S+)", output)
    assert report, tail
    # Retraining was started by the scheduler on an asset event, and decided with a reason.
    assert "The scheduler started retraining on the asset event (no one triggered it)" in output, tail
    assert len(re.findall(r"^  version \d+ (promoted|rejected): \S", output, re.MULTILINE)) == 2, tail
    # The champion scored the customers after its promotion and after the drifted batches, with online features.
    scored = re.findall(r"^  version (\d+) scored ([\d,]+) of ([\d,]+) rows \((\d+) unscorable", output, re.MULTILINE)
    assert len(scored) >= 2 and all(int(rows.replace(",", "")) > 0 for _, rows, _, _ in scored), tail
    # The live quality series: each day's metric from the labels joined to the predictions.
    assert "live roc_auc of churn by day (labels joined to predictions):" in output, tail
    day = r"^    \d{4}-\d{2}-\d{2}  v\d+  roc_auc (\d\.\d{4}|n/a)  labels (\d+)/(\d+)"
    days = re.findall(day, output, re.MULTILINE)
    assert days and any(value != "n/a" and int(labels) > 0 for value, labels, _ in days), tail
    # How many rows each version scored, and the champion history: every alias move, in order.
    assert re.search(r"^Batch inference: rows scored by each version of churn\n  version \d+: [\d,]+ rows$", output,
                     re.MULTILINE), tail  # fmt: skip
    history = output.split("Champion history of churn (airflow-mlops history churn):")[-1]
    assert re.search(r"^  1 .* champion .* promotion ", history, re.MULTILINE), tail
    # Every version names its feature service and training-set digest.
    assert len(re.findall(r"^      mlops\.feature_service = churn_v1$", output, re.MULTILINE)) >= 2, tail
    assert len(re.findall(r"^      mlops\.dataset_digest = [0-9a-f]{16,}$", output, re.MULTILINE)) >= 2, tail
    assert re.search(r"^champion: version \d+", output, re.MULTILINE), tail
    return {"batch": quarantined.group(1), "docs": quarantined.group(2), "report": report.group(1)}


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
