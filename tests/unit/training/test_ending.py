"""The trainer's way out: whatever stops it, and however late a SIGTERM comes, it still ends its MLflow run.

The whole path (a killed task process, the trainer told by Linux) is tests/reliability/test_trainer_termination.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_mlops_provider.training import __main__ as trainer_main
from airflow_mlops_provider.training.errors import EXIT_FAILED, EXIT_TERMINATED, TrainerTerminated

ARGS = ["--target", "churned", "--problem-type", "binary", "--numeric-features", "tenure", "--device", "cpu"]


def test_sigterm_unwinds_once_so_a_second_one_cannot_interrupt_the_ending() -> None:
    handler = trainer_main._Termination(os.getppid())
    with pytest.raises(TrainerTerminated):
        handler(signal.SIGTERM, None)
    handler(signal.SIGTERM, None)  # returns: the first one is still ending the run


@pytest.mark.parametrize("late_sigterm", [False, True])
def test_a_failure_ends_the_run_even_when_sigterm_interrupts_the_ending(
    monkeypatch: pytest.MonkeyPatch, late_sigterm: bool
) -> None:
    endings: list[str] = []

    def fail_run() -> None:
        endings.append("FAILED")
        if late_sigterm and len(endings) == 1:
            raise TrainerTerminated  # what the handler raises when SIGTERM lands inside the first try

    def train(config: object, run_id: str) -> dict[str, object]:
        raise RuntimeError("the server went away")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    monkeypatch.setattr(trainer_main, "_fail_run_if_running", fail_run)
    monkeypatch.setattr("airflow_mlops_provider.training.trainer.run_training", train)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = trainer_main.main(["--data-uri", "unused.parquet", *ARGS])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == (EXIT_TERMINATED if late_sigterm else EXIT_FAILED)
    assert endings == (["FAILED", "FAILED"] if late_sigterm else ["FAILED"])


def test_a_broken_output_pipe_does_not_stop_the_trainer_before_it_ends_its_run(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        from airflow_mlops_provider.training.__main__ import _say
        read_end, write_end = os.pipe()
        os.close(read_end)  # the task process died: nobody reads
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        _say("trainer failed: the server went away")
        _say("and again")
        print("still writing", flush=True)
        open(sys.argv[1], "w").write("reached the end")
        """
    )
    marker = tmp_path / "end"
    done = subprocess.run([sys.executable, "-c", script, str(marker)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "reached the end"
