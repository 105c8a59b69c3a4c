"""S3 faults against real servers: an endpoint that accepts connections and never answers, a moto server
frozen in the middle of a run and resumed, and ``s3://`` without credentials. Every call ends within the
stated bound, with a message naming the endpoint, and nothing is half-written."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from airflow_mlops_provider.core.io.storage import S3_CALL_BOUND_S, ObjectStore, StorageConfig
from tests.fixtures.s3_server import run_moto_server

#: What a bounded call may take beyond its timeouts: the retry backoff (under 2 s) and a busy machine.
SLACK_S = 8.0


@contextmanager
def stalled_endpoint() -> Iterator[str]:
    """A TCP server on a free loopback port that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_stalled_endpoint_fails_within_the_stated_bound(tmp_path: Path) -> None:
    with stalled_endpoint() as endpoint:
        store = ObjectStore(StorageConfig(endpoint, "key-id", "secret-key", "us-east-1"))
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=rf"S3 endpoint {endpoint} did not answer \(for s3://b/k\.parquet\)"):
            store.read_bytes("s3://b/k.parquet")
        elapsed = time.monotonic() - started
    assert S3_CALL_BOUND_S - 6 <= elapsed <= S3_CALL_BOUND_S + SLACK_S  # it waited, and no longer than promised


def test_a_frozen_server_fails_the_call_in_bounds_and_a_retry_after_it_resumes_completes(tmp_path: Path) -> None:
    with run_moto_server(tmp_path / "moto.log") as endpoint:
        store = ObjectStore(StorageConfig(endpoint, "testing", "testing", "us-east-1"))
        store.client.create_bucket(Bucket="outage")
        uri, first, second = "s3://outage/data.bin", b"a" * 300_000, b"b" * 300_000
        store.write_bytes(uri, first)
        server_group = _process_group_listening_on(int(endpoint.rsplit(":", 1)[1]))
        os.killpg(server_group, signal.SIGSTOP)  # the server stops answering in the middle of the run
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionError, match=f"S3 endpoint {endpoint} did not answer"):
                ObjectStore(store.config).write_bytes(uri, second)
            assert time.monotonic() - started <= S3_CALL_BOUND_S + SLACK_S
        finally:
            os.killpg(server_group, signal.SIGCONT)  # ... and comes back
        assert store.read_bytes(uri) in (first, second)  # the old object or the new one, whole: never a part
        store.write_bytes(uri, second)  # the task's retry
        assert store.read_bytes(uri) == second


def test_s3_without_credentials_fails_fast_naming_the_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with run_moto_server(tmp_path / "moto.log") as endpoint:
        store = ObjectStore(StorageConfig(endpoint_url=endpoint, region_name="us-east-1"))
        started = time.monotonic()
        with pytest.raises(PermissionError, match=f"no usable S3 credentials for {endpoint} \\(for s3://b/k\\)"):
            store.read_bytes("s3://b/k")
        assert time.monotonic() - started <= S3_CALL_BOUND_S


def _process_group_listening_on(port: int) -> int:
    """The process group of the moto server listening on ``port`` (started by this test, in its own group)."""
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
                inode = fields[9]
    assert inode is not None, f"nothing listens on {port}"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in fds):
                return os.getpgid(int(pid))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    raise AssertionError(f"no process owns the socket on port {port}")
