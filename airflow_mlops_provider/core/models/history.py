"""The champion history of a registered model: every alias move, kept with the model (Airflow-free).

MLflow keeps no history of aliases (mlflow issue #2169): setting an alias overwrites it. So every move is
appended as a tag of the registered model, ``mlops.history.000001``, ``...002``, ... (:attr:`Tag.HISTORY_PREFIX`
and a zero-padded sequence number), whose value is the entry as compact JSON: when (UTC), which alias, from
which version to which, the kind of move, who decided, from which task, and why. An entry stays under
:data:`MAX_ENTRY_CHARS` (MLflow's SQL stores keep a registered model tag's value in a ``VARCHAR(5000)``).

Moves happen holding the model's promotion lease (:mod:`~airflow_mlops_provider.core.models.lease`), so
sequence numbers do not race. An entry has an idempotency key, :attr:`HistoryEntry.key` (the task, the kind,
the alias and the target version): a retry that moves the same alias to the same version appends nothing
new, and a retry of a try killed between the move and the append appends the missing entry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from airflow_mlops_provider.contracts import CHAMPION, Tag

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

#: The longest JSON of one entry; a longer reason is cut to fit.
MAX_ENTRY_CHARS: Final = 4000
#: Digits of the sequence number in a history tag's key (keys sort in order up to 999,999 moves).
SEQ_DIGITS: Final = 6


class HistoryKind:
    """What moved an alias: the ``kind`` of a :class:`HistoryEntry`."""

    #: The promotion policy passed (``PromoteModelOperator``).
    PROMOTION: Final = "promotion"
    #: A person approved a pending promotion (``ApplyPromotionOperator``).
    APPROVAL: Final = "approval"
    #: ``RollbackModelOperator`` restored an earlier champion.
    ROLLBACK: Final = "rollback"
    #: Any other move (``MlflowHook.move_alias`` called without a change).
    MANUAL: Final = "manual"
    #: The moves that make a version champion on its merits (a rollback restores one of those).
    PROMOTIONS: Final = (PROMOTION, APPROVAL)


class UnknownModelError(LookupError):
    """The registered model does not exist."""


@dataclass(frozen=True)
class AliasChange:
    """Why an alias moves: what its history entry records besides the versions.

    :param kind: a :class:`HistoryKind`.
    :param task: the task that moves it, ``dag/run/task`` (part of the entry's idempotency key).
    :param by: who decided: a person for an approval; by default the task.
    :param reason: why, in a few words.
    """

    kind: str
    task: str
    by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    """One alias move of a registered model.

    :param seq: its place in the history (1-based).
    :param at: when, ISO 8601 in UTC.
    :param alias: the alias that moved.
    :param from_version: the version it pointed at before (``None``: it did not exist).
    :param to_version: the version it points at since.
    :param kind: a :class:`HistoryKind`.
    :param by: who decided (a task or a person).
    :param task: the task that moved it.
    :param reason: why.
    """

    seq: int
    at: str
    alias: str
    from_version: str | None
    to_version: str
    kind: str
    by: str
    task: str
    reason: str

    @property
    def key(self) -> str:
        """The idempotency key: one entry per task, kind, alias and target version."""
        return f"{self.task}|{self.kind}|{self.alias}|{self.to_version}"

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict (``--json`` of the CLI)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "kind": self.kind,
            "by": self.by,
            "task": self.task,
            "reason": self.reason,
        }

    def to_tag(self) -> str:
        """The tag value: compact JSON of at most :data:`MAX_ENTRY_CHARS` characters (the reason is cut)."""
        body = self.to_dict()
        del body["seq"]  # it is in the tag's key
        text = json.dumps(body, separators=(",", ":"))
        excess = len(text) - MAX_ENTRY_CHARS
        if excess > 0:
            body["reason"] = self.reason[: max(0, len(self.reason) - excess - 20)] + " [cut]"
            text = json.dumps(body, separators=(",", ":"))
        return text

    @classmethod
    def from_tag(cls, seq: int, value: str) -> HistoryEntry:
        """Read an entry from its tag value.

        :param seq: the sequence number of its key.
        :param value: the JSON of :meth:`to_tag`.
        :raises ValueError: not an entry.
        """
        try:
            body = json.loads(value)
            return cls(
                seq=seq,
                at=str(body["at"]),
                alias=str(body["alias"]),
                from_version=None if body.get("from") is None else str(body["from"]),
                to_version=str(body["to"]),
                kind=str(body["kind"]),
                by=str(body.get("by") or ""),
                task=str(body.get("task") or ""),
                reason=str(body.get("reason") or ""),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as err:
            raise ValueError(f"history entry {seq} is not an entry: {value[:200]!r}") from err


def history_tag(seq: int) -> str:
    """The registered model tag key of entry ``seq``.

    :param seq: the entry's sequence number (1-based).
    """
    return f"{Tag.HISTORY_PREFIX}{seq:0{SEQ_DIGITS}d}"


def read_history(client: MlflowClient, model_name: str) -> list[HistoryEntry]:
    """The champion history of ``model_name``, oldest first (empty for a model never moved since this feature).

    :param client: an MLflow client of the registry.
    :param model_name: the registered model.
    :raises UnknownModelError: the model does not exist.
    """
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(model_name).tags or {}
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnknownModelError(f"No registered model {model_name!r}") from err
        raise
    entries = []
    for key, value in tags.items():
        suffix = key[len(Tag.HISTORY_PREFIX) :]
        if not key.startswith(Tag.HISTORY_PREFIX) or not suffix.isdigit():
            continue
        try:
            entries.append(HistoryEntry.from_tag(int(suffix), value))
        except ValueError as err:
            log.warning("Skipping an unreadable history tag of %s: %s", model_name, err)
    return sorted(entries, key=lambda entry: entry.seq)


def now_utc() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_move(
    client: MlflowClient,
    model_name: str,
    alias: str,
    from_version: str | None,
    to_version: str,
    change: AliasChange,
    clock: Callable[[], str] = now_utc,
) -> HistoryEntry:
    """Append the entry of a move, once: an entry with the same key already there is returned instead.

    Call it holding the model's promotion lease (the sequence number is the last one + 1).

    :param client: an MLflow client of the registry.
    :param model_name: the registered model.
    :param alias: the alias that moved.
    :param from_version: the version it pointed at before.
    :param to_version: the version it points at now.
    :param change: why it moved.
    :param clock: the time of the entry.
    """
    entries = read_history(client, model_name)
    entry = HistoryEntry(
        seq=(entries[-1].seq + 1) if entries else 1,
        at=clock(),
        alias=alias,
        from_version=None if from_version is None else str(from_version),
        to_version=str(to_version),
        kind=change.kind,
        by=change.by or change.task,
        task=change.task,
        reason=change.reason,
    )
    for existing in entries:
        if existing.key == entry.key:
            return existing
    client.set_registered_model_tag(model_name, history_tag(entry.seq), entry.to_tag())
    return entry


def promotion_of(entries: Sequence[HistoryEntry], version: str) -> HistoryEntry | None:
    """The last entry that made ``version`` champion on its merits (a promotion or an approval), if any.

    Its ``from_version`` is the champion before it: what a rollback from ``version`` restores.

    :param entries: the model's history.
    :param version: the version, e.g. the current champion.
    """
    for entry in reversed(entries):
        if entry.alias == CHAMPION and entry.to_version == str(version) and entry.kind in HistoryKind.PROMOTIONS:
            return entry
    return None


def format_history(entries: Sequence[HistoryEntry]) -> str:
    """The history as a text table, oldest first (newest last).

    :param entries: the model's history.
    """
    if not entries:
        return "No alias moves recorded."
    header = ("#", "when (UTC)", "alias", "from", "to", "kind", "by", "reason")
    rows = [
        (str(e.seq), e.at, e.alias, e.from_version or "-", e.to_version, e.kind, e.by, " ".join(e.reason.split()))
        for e in entries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
