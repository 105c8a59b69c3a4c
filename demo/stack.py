"""The embedded stack of the demo: ``mlflow server`` and ``airflow standalone`` on loopback, one state dir.

Each server runs in its own session (``start_new_session``), with its output in a log file. Stopping a
server signals every process of its session and every descendant, gracefully first, so nothing is left
behind, including task processes that moved to their own process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import psutil
import yaml

T = TypeVar("T")

BIN_DIR = Path(sys.executable).parent
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
POLL_SECONDS = 0.5
# Inherited variables with these prefixes would leak the user's own Airflow/MLflow setup into the stack.
_HOST_ENV_PREFIXES = ("AIRFLOW", "MLFLOW_")


class StackError(RuntimeError):
    """A server of the stack failed to start, died, or answered with an error."""


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that are currently free on every local IPv4 interface.

    :param count: how many ports.
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in socks]


def base_env() -> dict[str, str]:
    """The caller's environment minus Airflow/MLflow settings, with this interpreter's bin dir on PATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_HOST_ENV_PREFIXES)}
    env["PATH"] = os.pathsep.join([str(BIN_DIR), env.get("PATH", "")])
    return env


@dataclass
class ManagedProcess:
    """A server process started in its own session, with its output going to ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], log_path: Path) -> ManagedProcess:
        """Start ``args`` in a new session, stdout and stderr appended to ``log_path``.

        :param name: a short name for messages.
        :param args: the command line.
        :param env: the full environment of the process.
        :param log_path: the log file.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=log_path.parent,
                start_new_session=True,
            )
        return cls(name=name, popen=popen, log_path=log_path)

    @property
    def pid(self) -> int:
        """The leader's pid, which is also the id of the session it created."""
        return self.popen.pid

    def check_alive(self) -> None:
        """Raise :class:`StackError` with the log's tail if the leader has exited."""
        code = self.popen.poll()
        if code is not None:
            tail = self.log_tail()
            raise StackError(f"{self.name} exited with code {code}; end of {self.log_path}:\n{tail}")

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log file.

        :param lines: how many lines.
        """
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def members(self) -> list[psutil.Process]:
        """Live processes of this server: its session and the leader's descendants (zombies excluded)."""
        found: dict[int, psutil.Process] = {}
        if self.popen.poll() is None:  # poll() also reaps the leader once it has exited
            try:
                found = {child.pid: child for child in psutil.Process(self.pid).children(recursive=True)}
                found[self.pid] = psutil.Process(self.pid)
            except psutil.NoSuchProcess:
                pass
        for proc in psutil.process_iter():
            if proc.pid not in found and _session_of(proc.pid) == self.pid:
                found[proc.pid] = proc
        return [proc for proc in found.values() if _is_running(proc)]

    def stop(self, grace_seconds: float) -> None:
        """Stop every process of this server: SIGINT to the leader's group, then SIGTERM, then SIGKILL.

        :param grace_seconds: how long the server may take to shut down cleanly before SIGTERM.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGINT)
        for sig, seconds in ((None, grace_seconds), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                _send(self.members(), sig)
            if self._wait_gone(seconds):
                return
        survivors = [proc.pid for proc in self.members()]
        raise StackError(f"{self.name}: processes survived SIGKILL: {survivors}")

    def _wait_gone(self, timeout: float) -> bool:
        """Wait until no process of this server is left; return whether that happened within ``timeout``."""
        deadline = time.monotonic() + timeout
        while members := self.members():
            if [proc.pid for proc in members] == [self.pid]:
                # Only the leader is left, with nothing left to stop; `airflow standalone` may have missed
                # its SIGINT (it can swallow one while checking its components) and would wait forever.
                self.popen.terminate()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True


def _session_of(pid: int) -> int | None:
    """The session id of ``pid``, or ``None`` if it is gone or hidden."""
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _is_running(proc: psutil.Process) -> bool:
    """Whether ``proc`` exists and is not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _send(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
    """Send ``sig`` to each process that still exists."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, watched: Iterable[ManagedProcess]) -> T:
    """Poll ``probe`` until it returns a value other than ``None``; fail early if a watched server dies.

    :param what: what is awaited, for the timeout message.
    :param probe: returns the awaited value, or ``None`` while not ready; transport errors count as not ready.
    :param timeout: seconds before giving up.
    :param watched: servers that must stay alive meanwhile.
    """
    deadline = time.monotonic() + timeout
    while True:
        for proc in watched:
            proc.check_alive()
        try:
            value = probe()
        except httpx.TransportError:
            value = None
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class MlflowServer:
    """Settings of the demo's ``mlflow server``: sqlite store and local artifacts under ``home``."""

    NAME: ClassVar[str] = "mlflow server"
    home: Path
    port: int

    @property
    def url(self) -> str:
        """The tracking URI."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The ``mlflow server`` command line."""
        return [
            str(BIN_DIR / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.home / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "2",
            "--allowed-hosts",
            f"127.0.0.1:{self.port},localhost:{self.port}",
        ]

    def launch(self) -> ManagedProcess:
        """Start the server (without waiting for it)."""
        env = base_env() | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        return ManagedProcess.start(self.NAME, self.command(), env, self.home / "server.log")

    def wait_ready(self, watched: list[ManagedProcess]) -> None:
        """Wait until ``/health`` answers.

        :param watched: servers that must stay alive meanwhile.
        """
        wait_for("MLflow /health", lambda: _ok(f"{self.url}/health"), 120, watched)


@dataclass(frozen=True)
class AirflowStandalone:
    """Settings of the demo's ``airflow standalone``: SQLite, LocalExecutor, API on loopback, no login."""

    NAME: ClassVar[str] = "airflow standalone"
    home: Path
    api_port: int
    worker_log_port: int
    trigger_log_port: int
    dags_folder: Path
    mlflow_url: str
    data_dir: Path

    @property
    def url(self) -> str:
        """The API server's (and UI's) base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        """The environment of ``airflow standalone``: all its configuration, connections included."""
        return base_env() | {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The demo unpauses the DAGs of its story; the others (drift_watch) stay paused.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.home / "dag_bundles"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": self.mlflow_url}),
            "AIRFLOW__MLOPS__TRAINING_BACKEND": "local",
            "AIRFLOW__MLOPS__DATA_DIR": str(self.data_dir),
            **self.feast_env(),
        }

    def feast_env(self) -> dict[str, str]:
        """The ``feast_default`` connection and the offline data location, all under ``data_dir``/feature_store.

        The connection points at the DAGs' ``feature_repo`` for the definitions, with its
        ``feature_store.yaml`` inline and its registry and sqlite online store moved out of the repo.
        """
        repo = self.dags_folder / "feature_repo"
        store = self.data_dir / "feature_store"
        config = yaml.safe_load((repo / "feature_store.yaml").read_text())
        config["registry"] = str(store / "registry.db")
        config["online_store"]["path"] = str(store / "online_store.db")
        extra = {"repo_path": str(repo), "feature_store_yaml": yaml.safe_dump(config)}
        return {
            "AIRFLOW_CONN_FEAST_DEFAULT": json.dumps({"conn_type": "feast", "extra": extra}),
            "MLOPS_FEATURE_DATA_URI": str(store / "offline"),
        }

    def launch(self) -> ManagedProcess:
        """Start ``airflow standalone`` (without waiting for it)."""
        command = [str(BIN_DIR / "airflow"), "standalone"]
        return ManagedProcess.start(self.NAME, command, self.env(), self.home / "standalone.log")

    def wait_ready(self, watched: list[ManagedProcess]) -> None:
        """Wait until the API reports the metadatabase, scheduler, DAG processor and triggerer healthy.

        :param watched: servers that must stay alive meanwhile.
        """
        with contextlib.closing(AirflowApi(self.url)) as api:
            wait_for("Airflow's components to be healthy", api.healthy, 300, watched)


def _ok(url: str) -> bool | None:
    """``True`` if ``url`` answers 200, else ``None`` (not ready yet)."""
    return True if httpx.get(url, timeout=5).status_code == 200 else None


class AirflowApi:
    """The few calls of Airflow's public REST API (v2) the demo needs.

    With ``[core] simple_auth_manager_all_admins`` the API server's middleware adds an admin token to every
    request, so no ``Authorization`` header is sent.
    """

    def __init__(self, base_url: str) -> None:
        """:param base_url: the API server's base URL."""
        self._client = httpx.Client(base_url=f"{base_url}/api/v2", timeout=30)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _get(self, path: str, **params: Any) -> Any:
        """GET ``path`` and return its JSON, raising :class:`StackError` on an HTTP error."""
        response = self._client.get(path, params=params)
        _raise_for_status(response)
        return response.json()

    def healthy(self) -> bool | None:
        """``True`` once the metadatabase, scheduler, DAG processor and triggerer are healthy, else None."""
        response = self._client.get("/monitor/health")
        if response.status_code != 200:
            return None
        statuses = [component.get("status") for component in response.json().values()]
        return True if len(statuses) >= 4 and all(status == "healthy" for status in statuses) else None

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's details, or ``None`` while it is not parsed yet.

        :param dag_id: the DAG id.
        """
        response = self._client.get(f"/dags/{dag_id}")
        if response.status_code == 404:
            return None
        _raise_for_status(response)
        result: dict[str, Any] = response.json()
        return result

    def import_errors(self) -> list[dict[str, Any]]:
        """All current DAG import errors (``filename``, ``stack_trace``, ...)."""
        errors: list[dict[str, Any]] = self._get("/importErrors", limit=100)["import_errors"]
        return errors

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG.

        :param dag_id: the DAG id.
        :param paused: the new state.
        """
        _raise_for_status(self._client.patch(f"/dags/{dag_id}", json={"is_paused": paused}))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs (``dag_run_id``, ``run_type``, ``state``, ...), oldest first.

        :param dag_id: the DAG id.
        """
        runs: list[dict[str, Any]] = self._get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="id")["dag_runs"]
        return runs

    def xcom(self, ti: dict[str, Any], key: str = "return_value") -> Any:
        """A task instance's XCom value, or ``None`` if it pushed none under ``key``.

        :param ti: a task instance as returned by :meth:`task_instances`.
        :param key: the XCom key.
        """
        path = f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/xcomEntries/{key}"
        response = self._client.get(path, params={"map_index": ti["map_index"], "deserialize": True})
        if response.status_code == 404:
            return None
        _raise_for_status(response)
        return response.json()["value"]

    def trigger(self, dag_id: str, run_id: str, logical_date: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        """Create a DAG run.

        :param dag_id: the DAG id.
        :param run_id: the run id to create.
        :param logical_date: ISO 8601 logical date; ``None`` for none (the run is after now).
        :param conf: the run's conf (the DAG's params).
        """
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
        response = self._client.post(f"/dags/{dag_id}/dagRuns", json=body)
        _raise_for_status(response)
        result: dict[str, Any] = response.json()
        return result

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run's details (``state``, ``start_date``, ...).

        :param dag_id: the DAG id.
        :param run_id: the run id.
        """
        result: dict[str, Any] = self._get(f"/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances (``task_id``, ``map_index``, ``state``, ``duration``, ``try_number``).

        :param dag_id: the DAG id.
        :param run_id: the run id.
        """
        tis: list[dict[str, Any]] = self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)[
            "task_instances"
        ]
        return tis

    def task_log(self, ti: dict[str, Any]) -> str:
        """The full log of a task instance's latest try, as text.

        :param ti: a task instance as returned by :meth:`task_instances`.
        """
        run_path = f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}"
        log_path = f"{run_path}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
        payload = self._get(log_path, full_content=True, map_index=ti["map_index"])
        return "\n".join(_log_line(entry) for entry in payload.get("content", []))


def _log_line(entry: Any) -> str:
    """Render one structured entry of the log endpoint as text, with an exception as a short traceback."""
    if not isinstance(entry, dict):
        return str(entry)
    line = " ".join(str(entry[k]) for k in ("timestamp", "level", "logger", "event", "reason") if entry.get(k))
    for error in entry.get("error_detail") or []:
        frames = [f'  File "{f["filename"]}", line {f["lineno"]}, in {f["name"]}' for f in error.get("frames", [])]
        line += "\n" + "\n".join([*frames, f"{error.get('exc_type')}: {error.get('exc_value')}"])
    return line


def _raise_for_status(response: httpx.Response) -> None:
    """Raise :class:`StackError` with the response body if ``response`` is an HTTP error."""
    if response.is_error:
        request = response.request
        raise StackError(f"{request.method} {request.url} -> {response.status_code}: {response.text[:2000]}")
