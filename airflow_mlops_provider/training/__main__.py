"""CLI entry point: ``python -m airflow_mlops_provider.training --help``."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
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

    Whatever stops it (bad arguments or data, a failure, SIGTERM), ``MLFLOW_RUN_ID`` is not left RUNNING.

    :param argv: arguments without the program name; ``sys.argv[1:]`` by default.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parent = os.getppid()
    signal.signal(signal.SIGTERM, partial(_terminate, parent))
    try:
        config = parse_config(argv)
        missing = [name for name in ("MLFLOW_TRACKING_URI", RUN_ID_ENV) if not os.environ.get(name)]
        if missing:
            raise TrainerInputError(f"environment variables not set: {missing}")
        log.info("training %s into MLflow run %s; loading torch and mlflow", config.data_uri, os.environ[RUN_ID_ENV])
        from airflow_mlops_provider.training.trainer import run_training  # heavy: torch, mlflow (seconds)

        summary = run_training(config, os.environ[RUN_ID_ENV])
    except TrainerInputError as err:
        print(f"trainer error: {err}", file=sys.stderr)
        _fail_run_if_running()
        return EXIT_BAD_INPUT
    except TrainerTerminated:
        print("trainer stopped by SIGTERM", file=sys.stderr)
        _fail_run_if_running()
        return EXIT_TERMINATED
    except Exception as err:
        log.exception("training failed")
        print(f"trainer failed: {type(err).__name__}: {err}", file=sys.stderr)
        _fail_run_if_running()
        return EXIT_FAILED
    print(json.dumps(summary))
    return EXIT_OK


def _terminate(parent: int, signum: int, frame: FrameType | None) -> None:
    """Unwind on SIGTERM. When it comes because the task process died (PR_SET_PDEATHSIG), nobody reads the
    output pipe any more: send the output to /dev/null first, so that ending the run cannot die of SIGPIPE."""
    if os.getppid() != parent:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
    raise TrainerTerminated


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
