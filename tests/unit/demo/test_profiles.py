"""Choosing a profile: an unknown one, and the prod profile on a machine without its services; the prod profile's
credentials (a Redis ACL user, an MLflow token) and the restart of a component on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from demo.processes import StackError, base_env, free_ports
from demo.prod import CONTROL_FOLDER, ControlledProcess, ProdSettings, component_state, request
from demo.services import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, Services
from tests.paths import DAGS, REPO


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


def test_the_admin_redis_client_does_not_retry_so_a_missing_redis_is_named_at_once() -> None:
    connection = Services(DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL).redis_client(0).connection_pool.make_connection()
    assert connection.retry.get_retries() == 0  # redis-py's default, 3 with backoff, took 12 s to say so


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    code, output, _ = run_demo(tmp_path / "demo", DEMO_PROFILE="staging")

    assert code == 1
    assert "DEMO_PROFILE='staging' is not a profile; choose one of embedded, prod" in output, output


def test_a_redis_acl_user_logs_in_to_the_broker_and_the_online_store(tmp_path: Path) -> None:
    services = Services(DEFAULT_POSTGRES_URL, "redis://ml%2Bops:p%40ss%2Bw%2Fd@127.0.0.1:6390")
    settings = ProdSettings(
        tmp_path, DAGS, services, {"airflow": "a", "mlflow": "m", "feast": "f"}, {"broker": 3, "online": 4}
    )

    assert (services.redis_username, services.redis_password) == ("ml+ops", "p@ss+w/d")
    assert settings.broker_url() == "redis://ml%2Bops:p%40ss%2Bw%2Fd@127.0.0.1:6390/3"
    online = settings.feast_config()["online_store"]["connection_string"]
    assert online == "127.0.0.1:6390,username=ml+ops,password=p@ss+w/d,db=4"


def test_the_mlflow_token_goes_in_the_connection_only_when_given(tmp_path: Path) -> None:
    services = Services(DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL)
    dbs, redis_dbs = {"airflow": "a", "mlflow": "m", "feast": "f"}, {"broker": 1, "online": 2}

    with_token = ProdSettings(tmp_path, DAGS, services, dbs, redis_dbs, mlflow_token="tok+1/2").airflow_env()
    without = ProdSettings(tmp_path, DAGS, services, dbs, redis_dbs).airflow_env()

    assert json.loads(with_token["AIRFLOW_CONN_MLFLOW_DEFAULT"])["extra"] == {"token": "tok+1/2"}
    assert "token" not in without["AIRFLOW_CONN_MLFLOW_DEFAULT"]


def test_a_component_stops_and_starts_again_on_request(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    component = ControlledProcess.launch("airflow sleeper", sleeper, base_env(), tmp_path / "sleeper.log", tmp_path)
    first = component.pid
    try:
        component.check_alive()
        assert component_state(tmp_path, "airflow sleeper") is None

        request(tmp_path, "airflow sleeper", "stop")
        component.check_alive()  # the demo's poll carries the request out; a held component is not a failure
        component.check_alive()
        assert component_state(tmp_path, "airflow sleeper") == "stopped"
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE

        request(tmp_path, "airflow sleeper", "start")
        component.check_alive()
        assert component_state(tmp_path, "airflow sleeper") == f"running {component.pid}"
        assert component.pid != first and psutil.Process(component.pid).is_running()
        assert not list((tmp_path / CONTROL_FOLDER).glob("*.request"))
    finally:
        component.stop(5.0)
    with pytest.raises(StackError, match="airflow sleeper exited"):
        component.check_alive()
