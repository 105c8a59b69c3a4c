"""Move a raw batch that failed its gate to a quarantine location, with its validation result beside it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.io.urls import moved_uri
from airflow_mlops_provider.failpoints import failpoint

#: Appended to the quarantined batch's URI to name its validation result.
RESULT_SUFFIX = ".validation.json"


def quarantine_batch(
    batch_uri: str, quarantine_prefix: str, result: Mapping[str, Any], store: ObjectStore | None = None
) -> str:
    """Move the batch under ``quarantine_prefix`` and write ``result`` beside it as ``<name>.validation.json``.

    The batch is copied, the result written, and only then is the original deleted, so an interruption
    never loses the batch, and a retry (which finds the original still there) redoes the same writes. A
    result beside a quarantined batch therefore means the batch's copy is whole. Two runs racing on one
    batch write the same objects; the later delete finds nothing and is fine with that.

    :param batch_uri: the batch to move.
    :param quarantine_prefix: the quarantine "folder" (outside the landing prefix the batches are listed from).
    :param result: the JSON-safe validation result.
    :param store: the store to go through; a default :class:`ObjectStore` if ``None``.
    :return: the batch's URI in quarantine.
    """
    store = store or ObjectStore()
    target = moved_uri(batch_uri, quarantine_prefix)
    failpoint("validation.before_quarantine")
    store.write_bytes(target, store.read_bytes(batch_uri))
    failpoint("validation.after_quarantine_copy")
    store.write_bytes(target + RESULT_SUFFIX, json.dumps(result, indent=2, default=str).encode())
    failpoint("validation.after_quarantine_result")
    store.delete(batch_uri, missing_ok=True)
    failpoint("validation.after_quarantine")
    return target


def quarantined_result(
    batch_uri: str, quarantine_prefix: str, store: ObjectStore | None = None
) -> dict[str, Any] | None:
    """Return the validation result recorded when ``batch_uri`` was quarantined, or ``None`` if it was not.

    :param batch_uri: the batch's original URI.
    :param quarantine_prefix: the quarantine "folder".
    :param store: the store to go through; a default :class:`ObjectStore` if ``None``.
    """
    store = store or ObjectStore()
    result_uri = moved_uri(batch_uri, quarantine_prefix) + RESULT_SUFFIX
    if not store.exists(result_uri):
        return None
    recorded: dict[str, Any] = json.loads(store.read_bytes(result_uri))
    return recorded
