"""The champion history: entries as tags, appended once per key, read in order, formatted; rollback's lookup."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, Tag
from airflow_mlops_provider.core.models.history import (
    MAX_ENTRY_CHARS,
    AliasChange,
    HistoryEntry,
    HistoryKind,
    UnknownModelError,
    format_history,
    history_tag,
    promotion_of,
    read_history,
    record_move,
)
from tests.fixtures.mlflow_server import MlflowServer


def _entry(seq: int, alias: str, old: str | None, new: str, kind: str = HistoryKind.PROMOTION) -> HistoryEntry:
    return HistoryEntry(seq, "2026-01-01T00:00:00+00:00", alias, old, new, kind, "ct/r/promote", "ct/r/promote", "why")


def test_an_entry_round_trips_through_its_tag_and_stays_under_the_limit() -> None:
    entry = _entry(7, CHAMPION, "1", "2")
    assert HistoryEntry.from_tag(7, entry.to_tag()) == entry
    assert history_tag(7) == f"{Tag.HISTORY_PREFIX}000007"
    huge = HistoryEntry(1, "t", CHAMPION, None, "1", HistoryKind.APPROVAL, "ann", "ct/r/apply", "x" * 20_000)
    tag = huge.to_tag()
    assert len(tag) <= MAX_ENTRY_CHARS
    assert json.loads(tag)["reason"].endswith(" [cut]")
    with pytest.raises(ValueError, match="history entry 3 is not an entry"):
        HistoryEntry.from_tag(3, '{"alias": "champion"}')


def test_the_promotion_of_a_version_names_the_champion_it_replaced() -> None:
    entries = [
        _entry(1, CHAMPION, None, "1"),
        _entry(2, PREVIOUS_CHAMPION, None, "1"),
        _entry(3, CHAMPION, "1", "2"),
        _entry(4, CHAMPION, "2", "1", kind=HistoryKind.ROLLBACK),
        _entry(5, CHAMPION, "1", "3", kind=HistoryKind.APPROVAL),
    ]
    assert promotion_of(entries, "3") == entries[4]
    assert promotion_of(entries, "2") == entries[2]
    assert promotion_of(entries, "1") == entries[0]  # a rollback does not make a version champion on its merits
    assert promotion_of(entries, "9") is None


def test_the_table_lists_every_entry_newest_last() -> None:
    table = format_history([_entry(1, CHAMPION, None, "1"), _entry(2, CHAMPION, "1", "2")]).splitlines()
    assert table[0].split() == ["#", "when", "(UTC)", "alias", "from", "to", "kind", "by", "reason"]
    assert table[1].split()[:5] == ["1", "2026-01-01T00:00:00+00:00", "champion", "-", "1"]
    assert table[2].split()[:5] == ["2", "2026-01-01T00:00:00+00:00", "champion", "1", "2"]
    assert format_history([]) == "No alias moves recorded."


def test_moves_are_appended_in_order_once_per_key(mlflow_server: MlflowServer) -> None:
    client = MlflowClient(mlflow_server.tracking_uri)
    client.create_registered_model("history-model")
    promote = AliasChange(HistoryKind.PROMOTION, task="ct/run_1/promote_model", reason="better")
    first = record_move(client, "history-model", CHAMPION, None, "1", promote)
    again = record_move(client, "history-model", CHAMPION, None, "1", promote)  # a retry
    assert again == first and first.seq == 1
    approval = AliasChange(HistoryKind.APPROVAL, task="ct/run_2/apply_promotion", by="ann", reason="looks good")
    record_move(client, "history-model", PREVIOUS_CHAMPION, None, "1", approval)
    record_move(client, "history-model", CHAMPION, "1", "2", approval)
    client.set_registered_model_tag("history-model", "mlops.history.notes", "not an entry")
    history = read_history(client, "history-model")
    assert [(e.seq, e.alias, e.from_version, e.to_version, e.kind, e.by) for e in history] == [
        (1, CHAMPION, None, "1", HistoryKind.PROMOTION, "ct/run_1/promote_model"),
        (2, PREVIOUS_CHAMPION, None, "1", HistoryKind.APPROVAL, "ann"),
        (3, CHAMPION, "1", "2", HistoryKind.APPROVAL, "ann"),
    ]
    assert history[2].task == "ct/run_2/apply_promotion" and history[2].reason == "looks good"
    assert history[0].at.endswith("+00:00")
    with pytest.raises(UnknownModelError, match="No registered model 'no-such-model'"):
        read_history(client, "no-such-model")
