"""CLI entry point: ``python -m airflow_mlops_provider.training --help``."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from airflow_mlops_provider.training.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
    TrainerInputError,
    TrainerTerminated,
)
from airflow_mlops_provider.training.options import RUN_ID_ENV, parse_config

log = logging.getLogger("airflow_mlops_provider.training")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the trainer; print a JSON summary on stdout and return the exit code (``errors.EXIT_*``).

    Whatever stops it (bad arguments or data, a failure, SIGTERM, even while it is ending on another
    error), ``MLFLOW_RUN_ID`` is not left RUNNING.

    :param argv: arguments without the program name; ``sys.argv[1:]`` by default.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _Termination(os.getppid()))
    try:
        return _train(argv)
    except TrainerTerminated:  # SIGTERM came while _train was ending on another error
        _fail_run_if_running()
        return EXIT_TERMINATED


def _train(argv: Sequence[str] | None) -> int:
    """The trainer, from its arguments to its exit code; :func:`main` with the SIGTERM handler installed."""
    try:
        config = parse_config(argv)
        missing = [name for name in ("MLFLOW_TRACKING_URI", RUN_ID_ENV) if not os.environ.get(name)]
        if missing:
            raise TrainerInputError(f"environment variables not set: {missing}")
        log.info("training %s into MLflow run %s; loading torch and mlflow", config.data_uri, os.environ[RUN_ID_ENV])
        from airflow_mlops_provider.training.trainer import run_training  # heavy: torch, mlflow (seconds)

        summary = run_training(config, os.environ[RUN_ID_ENV])
    except TrainerInputError as err:
        _say(f"trainer error: {err}")
        _fail_run_if_running()
        return EXIT_BAD_INPUT
    except TrainerTerminated:
        _say("trainer stopped by SIGTERM")
        _fail_run_if_running()
        return EXIT_TERMINATED
    except Exception as err:
        log.exception("training failed")
        _say(f"trainer failed: {type(err).__name__}: {err}")
        _fail_run_if_running()
        return EXIT_FAILED
    print(json.dumps(summary))
    return EXIT_OK


class _Termination:
    """The SIGTERM handler: unwinds once (:class:`TrainerTerminated`); a second SIGTERM lets the first
    finish ending the run.

    :param parent: the parent's pid when the trainer started. When SIGTERM comes because the task process
        died (PR_SET_PDEATHSIG), nobody reads the output pipe any more: the output goes to /dev/null first,
        so that ending the run cannot fail on a broken pipe.
    """

    def __init__(self, parent: int) -> None:
        self.parent, self.raised = parent, False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if os.getppid() != self.parent:
            _drop_output()
        if not self.raised:
            self.raised = True
            raise TrainerTerminated


def _drop_output() -> None:
    """Send stdout and stderr to /dev/null: their reader is gone."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.dup2(devnull, sys.stderr.fileno())
    os.close(devnull)


def _say(message: str) -> None:
    """Print ``message`` on stderr; a broken pipe (the task process died) sends the output to /dev/null
    instead of failing the trainer before it ends its run.

    :param message: one line for the task log.
    """
    try:
        print(message, file=sys.stderr, flush=True)
    except BrokenPipeError:
        _drop_output()


def _fail_run_if_running() -> None:
    """End ``MLFLOW_RUN_ID`` FAILED if it is still RUNNING (the trainer stopped before it took the run over,
    or while it held it): nobody is left waiting on a RUNNING run."""
    run_id, tracking_uri = os.environ.get(RUN_ID_ENV), os.environ.get("MLFLOW_TRACKING_URI")
    if not (run_id and tracking_uri):
        return
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="FAILED")
    except Exception as err:  # an unknown run, an unreachable server: the exit code already says it all
        log.warning("could not end MLflow run %s as FAILED: %s", run_id, err)


if __name__ == "__main__":
    sys.exit(main())
