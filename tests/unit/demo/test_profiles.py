"""Choosing a profile: an unknown one, and the prod profile on a machine without its services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from demo.processes import free_ports
from tests.paths import REPO


def run_demo(home: Path, **env: str) -> tuple[int, str, float]:
    """Run ``python -m demo`` to its end; return its exit code, output and duration.

    :param home: the demo's state directory.
    :param env: more environment.
    """
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "demo"],
        env=os.environ | {"DEMO_HOME": str(home), "DEMO_EXIT": "1", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_prod_profile_without_its_services_stops_at_once_naming_them(tmp_path: Path) -> None:
    pg_port, redis_port = free_ports(2)

    code, output, seconds = run_demo(
        tmp_path / "demo",
        DEMO_PROFILE="prod",
        DEMO_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
        DEMO_REDIS_URL=f"redis://127.0.0.1:{redis_port}",
    )

    assert code == 1, output
    assert f"PostgreSQL at 127.0.0.1:{pg_port}" in output and "pg_ctlcluster" in output, output
    assert f"Redis at 127.0.0.1:{redis_port}" in output and "redis-server" in output, output
    assert "plain `make demo` runs the embedded profile" in output, output
    assert "Starting" not in output and not (tmp_path / "demo" / "stack.json").exists()
    assert seconds < 60


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    code, output, _ = run_demo(tmp_path / "demo", DEMO_PROFILE="staging")

    assert code == 1
    assert "DEMO_PROFILE='staging' is not a profile; choose one of embedded, prod" in output, output
