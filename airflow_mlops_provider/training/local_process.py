"""The local backend's trainer process: a fork of the task process when that is safe, else a new interpreter.

A task process on a preloading worker (``preload.py``) has torch and mlflow imported already; a fresh
``python -m airflow_mlops_provider.training`` would import them again, for seconds. The fork runs the same
entry point (``training.__main__.main``) with the same isolation as a subprocess: its own session and
process group, ``PR_SET_PDEATHSIG`` so it dies with the task process, stdout and stderr on one pipe, its
own environment, and the trainer's exit codes (``training.errors``).

A fork is unsafe once the process runs a native thread pool: OpenMP's, after any torch computation (a
``dag.test()`` that scored a model first), or Arrow's. The fork would have the pool's state without its
threads, and its first parallel region would wait for them forever. So the trainer is forked only while
every thread of the process is a Python thread, and otherwise started in a new interpreter.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO, NoReturn

from airflow_mlops_provider.training.errors import EXIT_FAILED

#: The trainer's entry point, as a new interpreter runs it.
TRAINER_MODULE = "airflow_mlops_provider.training"


def terminate_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent (the task process) dies (PR_SET_PDEATHSIG), so that a killed
    worker leaves no trainer behind."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def native_threads() -> int:
    """Threads of this process that Python did not start (a library's pool); on Linux, else a guess of 1."""
    try:
        return len(os.listdir("/proc/self/task")) - threading.active_count()
    except OSError:
        return 1


class LocalTrainer:
    """The trainer as a local process, with the interface of the ``subprocess.Popen`` it may be.

    :param args: the trainer's arguments (no program name): passed as a list, never through a shell.
    :param env: the trainer's whole environment.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.args = list(args)
        self.returncode: int | None = None
        self._reaping = threading.Lock()  # on_kill may wait while the task's thread waits too
        self._popen: subprocess.Popen[bytes] | None = None
        self.forked = native_threads() == 0
        if self.forked:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                _run_trainer(self.args, env, write_end)
            os.close(write_end)
            self.pid = pid
            self.stdout: IO[bytes] = os.fdopen(read_end, "rb")
        else:
            self._popen = subprocess.Popen(
                [sys.executable, "-u", "-m", TRAINER_MODULE, *self.args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
            )
            assert self._popen.stdout is not None
            self.pid, self.stdout = self._popen.pid, self._popen.stdout

    @property
    def how(self) -> str:
        """How it was started, for the task log."""
        if self.forked:
            return "in a fork of the task process"
        return f"in a new interpreter (this process runs {native_threads()} native threads a fork would lack)"

    def lines(self) -> Iterator[str]:
        """The trainer's output, line by line, until it closes it."""
        with self.stdout:
            for line in self.stdout:
                yield line.decode(errors="replace").rstrip()

    def poll(self) -> int | None:
        """The exit code, or ``None`` while it runs."""
        with self._reaping:
            if self.returncode is None:
                if self._popen is not None:
                    self.returncode = self._popen.poll()
                else:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                    if pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code.

        :param timeout: seconds; ``TimeoutError`` after them.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the trainer (pid {self.pid}) is still running after {timeout} s")
            time.sleep(0.05)
        return code


#: The task's standard streams, kept alive in the fork: collected, they would close the descriptors 1 and 2
#: that now carry the trainer's output (the task opened them as the owners of those descriptors).
_TASK_STREAMS: list[object] = []


def _run_trainer(args: list[str], env: dict[str, str], output: int) -> NoReturn:
    """In the fork: detach, take the pipe as stdout and stderr, forget the task's logging and clients, run
    the trainer and exit with its code, never returning into the task's code."""
    code = EXIT_FAILED
    try:
        os.setsid()
        terminate_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _TASK_STREAMS.extend([sys.stdout, sys.stderr])
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        _forget_task_state()
        os.environ.clear()  # after: resetting MLflow's URIs edits the environment
        os.environ.update(env)
        from airflow_mlops_provider.training.__main__ import main

        code = main(args)
    except SystemExit as exit_:  # --help, or argparse refusing arguments: as a new interpreter would exit
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else EXIT_FAILED)
    except BaseException as err:  # the fork must never unwind into the task's code
        with contextlib.suppress(BaseException):
            print(f"trainer failed to start: {type(err).__name__}: {err}", file=sys.stderr)
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _forget_task_state() -> None:
    """Drop what the fork inherited from the task process and must not share: its log handlers (they write
    to the task's log channel) and disabled loggers, and MLflow's process-wide URIs (the trainer reads its
    environment)."""
    logging.disable(logging.NOTSET)
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            logger.handlers.clear()
            logger.propagate = True
            logger.disabled = False
    logging.getLogger().setLevel(logging.INFO)
    if "mlflow" in sys.modules:
        import mlflow  # its HTTP sessions are per process already

        # None (untyped in mlflow's stubs) means: from the environment again.
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
