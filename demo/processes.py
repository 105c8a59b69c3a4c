"""Server processes of the demo stacks: started in their own session, stopped with every descendant.

Each server runs in its own session (``start_new_session``), with its output in a log file. Stopping a
server signals every process of its session and every descendant, gracefully first, so nothing is left
behind, including task processes that moved to their own process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
import psutil

T = TypeVar("T")

BIN_DIR = Path(sys.executable).parent
POLL_SECONDS = 0.5
# Inherited variables with these prefixes would leak the user's own Airflow/MLflow setup into the stack.
_HOST_ENV_PREFIXES = ("AIRFLOW", "MLFLOW_")


class StackError(RuntimeError):
    """A server of the stack failed to start, died, or answered with an error."""


class Resource(Protocol):
    """Something a stack started and must stop: a server, a throwaway database."""

    name: str

    def check_alive(self) -> None:
        """Raise :class:`StackError` if it has failed."""

    def stop(self, grace_seconds: float) -> None:
        """Stop it, or remove it; raise :class:`StackError` if that failed.

        :param grace_seconds: how long a server may take to shut down cleanly.
        """


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


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, watched: Iterable[Resource]) -> T:
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


def http_ok(url: str) -> bool | None:
    """``True`` if ``url`` answers 200, else ``None`` (not ready yet).

    :param url: the URL to GET.
    """
    return True if httpx.get(url, timeout=5).status_code == 200 else None


def run_to_completion(name: str, args: list[str], env: dict[str, str], log_path: Path, timeout: float) -> None:
    """Run a one-shot command (e.g. ``airflow db migrate``), its output appended to ``log_path``.

    :param name: a short name for messages.
    :param args: the command line.
    :param env: the full environment of the process.
    :param log_path: the log file.
    :param timeout: seconds before it is stopped and counted as failed.
    """
    proc = ManagedProcess.start(name, args, env, log_path)
    try:
        code = proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.stop(5.0)
        raise StackError(
            f"{name} did not finish within {timeout:.0f}s; end of {log_path}:\n{proc.log_tail()}"
        ) from None
    if code != 0:
        raise StackError(f"{name} exited with code {code}; end of {log_path}:\n{proc.log_tail()}")
