"""End to end: ``scripts/demo.py`` runs the whole continuous-training loop, then leaves nothing behind."""

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

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"
DEMO_TIMEOUT = 1700

pytestmark = pytest.mark.e2e


def run_demo(home: Path) -> tuple[int, str]:
    """Run the demo with ``DEMO_EXIT=1``; on timeout interrupt it (so it still cleans up) and fail.

    :param home: the demo's state directory.
    """
    env = os.environ | {"DEMO_HOME": str(home), "DEMO_EXIT": "1"}
    with subprocess.Popen(
        [sys.executable, str(DEMO)],
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
    assert "Run 1/2: success" in output and "Run 2/2: success" in output, output[-20000:]
    assert re.search(r"^champion: version \d+", output, re.MULTILINE), output[-20000:]
    stack = json.loads((home / "stack.json").read_text())
    assert survivors(stack["sessions"], home) == []
    ports = stack["mlflow"]["ports"] + stack["airflow"]["ports"]
    assert [port for port in ports if listening(port)] == []
