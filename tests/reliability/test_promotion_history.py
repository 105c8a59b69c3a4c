"""Rollback follows the champion history, on a real MLflow server: it restores the champion the current one
replaced, records the move, is idempotent under retry, and falls back to ``previous_champion`` for models
promoted before the history existed."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, Tag
from airflow_mlops_provider.core.models.history import AliasChange, HistoryKind, read_history
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.operators.registry import RollbackModelOperator
from tests.fixtures.task_context import RuntimeTaskInstance

pytestmark = pytest.mark.integration


def _model(client: MlflowClient, name: str, versions: int) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source="mlops-test:/unused")


def _promote(hook: MlflowHook, name: str, old: str | None, new: str, run: str) -> None:
    """Move the aliases as a promotion does (the history records them)."""
    change = AliasChange(HistoryKind.PROMOTION, task=f"ct/{run}/promote_model", reason="better")
    if old is not None:
        previous = hook.get_alias_version(name, PREVIOUS_CHAMPION)
        hook.move_alias(name, PREVIOUS_CHAMPION, old, expected_current=previous, change=change)
    hook.move_alias(name, CHAMPION, new, expected_current=old, change=change)


def _rollback(name: str, run: str, try_number: int = 1) -> Any:
    op = RollbackModelOperator(task_id="rollback", model_name=name, reason=f"bad live metrics ({run})")
    return op.execute({"ti": RuntimeTaskInstance("ops", run, "rollback", try_number)})  # type: ignore[arg-type]


def test_rollback_restores_the_champion_the_history_says_came_before(mlflow_connection: str) -> None:
    client, hook = MlflowClient(mlflow_connection), MlflowHook()
    _model(client, "hist_rollback", 3)
    _promote(hook, "hist_rollback", None, "1", "r1")
    _promote(hook, "hist_rollback", "1", "2", "r2")
    _promote(hook, "hist_rollback", "2", "3", "r3")

    assert _rollback("hist_rollback", "rb1") == {"model_name": "hist_rollback", "champion": "2", "demoted": "3"}
    assert _rollback("hist_rollback", "rb1", try_number=2)["champion"] == "2"  # a retry does not roll back again
    # previous_champion is 2 now, yet the history knows 2 replaced 1: a second rollback goes on to 1.
    assert _rollback("hist_rollback", "rb2")["champion"] == "1"
    with pytest.raises(AirflowFailException, match=r"was its first champion .* no earlier champion to roll back to"):
        _rollback("hist_rollback", "rb3")
    assert hook.get_alias_version("hist_rollback", CHAMPION) == "1"
    assert client.get_model_version("hist_rollback", "3").tags[Tag.ROLLED_BACK] == "bad live metrics (rb1)"
    rollbacks = [(e.from_version, e.to_version, e.task) for e in read_history(client, "hist_rollback")
                 if e.kind == HistoryKind.ROLLBACK]  # fmt: skip
    assert rollbacks == [("3", "2", "ops/rb1/rollback"), ("2", "1", "ops/rb2/rollback")]


def test_a_model_without_history_rolls_back_to_previous_champion(mlflow_connection: str) -> None:
    client = MlflowClient(mlflow_connection)
    _model(client, "hist_legacy", 2)
    client.set_registered_model_alias("hist_legacy", CHAMPION, "2")  # promoted before the history existed
    client.set_registered_model_alias("hist_legacy", PREVIOUS_CHAMPION, "1")
    assert _rollback("hist_legacy", "rb1")["champion"] == "1"
    (entry,) = read_history(client, "hist_legacy")
    assert (entry.alias, entry.from_version, entry.to_version, entry.kind) == (CHAMPION, "2", "1", "rollback")


def test_rolling_back_an_unknown_model_fails_clearly(mlflow_connection: str) -> None:
    with pytest.raises(AirflowFailException, match=r"No registered model 'hist_nothing'.*nothing to roll back"):
        _rollback("hist_nothing", "rb1")
