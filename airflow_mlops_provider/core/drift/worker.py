"""A drift check in a child process, so that a poller (the triggerer) never runs pandas or the statistics.

The parent writes the :class:`~airflow_mlops_provider.core.drift.spec.DriftCheckSpec` as JSON on the
child's stdin; the child (``python -m airflow_mlops_provider.core.drift``) runs
:func:`~airflow_mlops_provider.core.drift.pipeline.run_drift_check` with the MLflow (``MLFLOW_*``) and S3
(``AWS_*``) settings of its environment, logs to stderr, and writes one JSON reply on stdout. This module
imports nothing heavy; the child imports the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftOutcome, NothingToCheckError

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODULE = "airflow_mlops_provider.core.drift"
# The reply's statuses.
CHECKED, NOTHING_TO_CHECK, UNREACHABLE, FAILED = "checked", "nothing_to_check", "unreachable", "failed"

log = logging.getLogger(__name__)


async def check_in_subprocess(
    spec: DriftCheckSpec, env: Mapping[str, str], log_line: Callable[[str], None]
) -> DriftOutcome:
    """Run the check in a child Python process and return its outcome; a cancelled wait kills the child.

    :param spec: the check.
    :param env: the child's whole environment: the MLflow and storage settings on top of the parent's.
    :param log_line: receives each line the child logged.
    :raises NothingToCheckError: nothing to compare yet.
    :raises ConnectionError: the store or server was unreachable (worth retrying).
    :raises RuntimeError: the check failed.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", MODULE,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env),
    )  # fmt: skip
    try:
        stdout, stderr = await process.communicate(json.dumps(spec.to_dict()).encode())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    for line in stderr.decode(errors="replace").splitlines():
        log_line(line)
    return read_reply(stdout, process.returncode)


def is_unreachable(err: BaseException) -> bool:
    """Tell whether ``err`` means a server or store could not be reached, or kept answering "try later": a
    ``ConnectionError``, ``TimeoutError`` or urllib3 ``MaxRetryError`` (retries spent on refused connections
    or 5xx answers) anywhere in its chain of causes, as under the ``MlflowException`` that an MLflow client
    raises for a server that is down.

    :param err: what a check or a poll raised.
    """
    from urllib3.exceptions import MaxRetryError

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionError | TimeoutError | MaxRetryError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def read_reply(stdout: bytes, returncode: int | None) -> DriftOutcome:
    """The outcome in the child's reply, or the error it reports.

    :param stdout: what the child wrote on stdout.
    :param returncode: its exit code, for the message when it wrote no reply.
    :raises NothingToCheckError: nothing to compare yet.
    :raises ConnectionError: the store or server was unreachable.
    :raises RuntimeError: the check failed, or the child died without a reply.
    """
    try:
        reply = json.loads(stdout)
    except ValueError:
        raise RuntimeError(f"the drift check exited with code {returncode} without a reply") from None
    status, body = reply["status"], reply["body"]
    if status == CHECKED:
        return DriftOutcome.from_dict(body)
    if status == NOTHING_TO_CHECK:
        raise NothingToCheckError(body)
    if status == UNREACHABLE:
        raise ConnectionError(body)
    raise RuntimeError(f"the drift check failed: {body}")


def main() -> int:
    """The child's side: read the spec on stdin, run the check, write the reply on stdout; return the exit code.

    While the check runs, anything printed goes to stderr, so stdout carries the reply only.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    reply_out, sys.stdout = sys.stdout, sys.stderr
    code, status = 0, CHECKED
    body: object = None
    try:
        body = _check(DriftCheckSpec.from_dict(json.load(sys.stdin))).to_dict()
    except NothingToCheckError as err:
        status, body = NOTHING_TO_CHECK, str(err)
    except Exception as err:  # the parent raises it again; the traceback goes to the log
        if is_unreachable(err):
            status, body = UNREACHABLE, str(err)
        else:
            log.exception("The drift check failed")
            code, status, body = 1, FAILED, f"{type(err).__name__}: {err}"
    finally:
        sys.stdout = reply_out
    reply_out.write(json.dumps({"status": status, "body": body}))
    return code


def _check(spec: DriftCheckSpec) -> DriftOutcome:
    from airflow_mlops_provider.core.drift.pipeline import run_drift_check
    from airflow_mlops_provider.core.io.storage import ObjectStore

    return run_drift_check(spec, ObjectStore(), _mlflow_client)


def _mlflow_client() -> MlflowClient:
    """A client of the server in ``MLFLOW_TRACKING_URI``, authenticated by the ``MLFLOW_TRACKING_*`` variables."""
    from mlflow import MlflowClient

    return MlflowClient()
