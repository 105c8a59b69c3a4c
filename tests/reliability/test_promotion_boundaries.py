"""PromoteModelOperator at the exact values where a decision flips, on a real MLflow server.

Crafted models score exactly known AUCs, so the policy can be set to the challenger's own score: each test
here fails if the operator scores the champion on other rows than the holdout, re-decides a retry after a
promotion, trusts an alias write without reading it back, or flips ``<`` and ``<=`` at a bar or margin.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, PROMOTED, REJECTED, Split, Tag
from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.core.models.metrics import roc_auc
from airflow_mlops_provider.hooks.mlflow import AliasConflictError
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from tests.reliability.registry_models import TARGET, CraftedModel, aliases, craft_models, lease_tickets

pytestmark = pytest.mark.integration
Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def crafted(mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[CraftedModel]]:
    """Models s0 (AUC ~0.70), s1 (~0.80), s2 (~0.90) on a holdout file."""
    return craft_models(mlflow_server.tracking_uri, tmp_path_factory.mktemp("bounds"), [0.7, 0.8, 0.9], seed=3)


def _register(model: str, crafted: list[CraftedModel], context: Context) -> None:
    for i, m in enumerate(crafted):
        RegisterModelOperator(task_id="register", model_name=model, mlflow_run_id=m.mlflow_run_id).execute(
            context("register", f"run_{i}")
        )


def _promote(context: Context, model: str, version: str, holdout: str, run: str, **kw: Any) -> dict[str, Any]:
    op = PromoteModelOperator(
        task_id="promote", model_name=model, version=version, holdout_uri=holdout, target=TARGET, **kw
    )
    result: dict[str, Any] = op.execute(context("promote", run))
    return result


def test_a_bar_met_exactly_passes(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context
) -> None:
    holdout, models = crafted
    _register("bound_min_value", models, task_context)
    exact = repr(models[0].auc)
    assert _promote(task_context, "bound_min_value", "1", holdout, "r1", min_value=exact)["promote"]
    above = repr(float(np.nextafter(models[1].auc, 1.0)))
    missed = _promote(task_context, "bound_min_value", "2", holdout, "r2", min_value=above)
    assert not missed["promote"] and "misses the bar" in missed["reason"]


def test_a_margin_met_exactly_promotes(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context
) -> None:
    holdout, models = crafted
    _register("bound_margin", models, task_context)
    _promote(task_context, "bound_margin", "1", holdout, "r1")
    margin = models[1].auc - models[0].auc  # the operator computes the gain the same way
    won = _promote(task_context, "bound_margin", "2", holdout, "r2", min_improvement=repr(margin))
    assert won["promote"], won["reason"]
    more = repr(float(np.nextafter(models[2].auc - models[1].auc, 1.0)))
    lost = _promote(task_context, "bound_margin", "3", holdout, "r3", min_improvement=more)
    assert not lost["promote"] and "improvement" in lost["reason"]
    assert aliases(MlflowClient(mlflow_connection), "bound_margin") == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}


def test_the_champion_is_scored_on_the_holdout_rows_only(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    """The champion (s1) is good on the holdout and random on the other rows; the challenger (s0) is in
    between on the holdout. Scored on all rows the champion would look worse than the challenger."""
    holdout, models = crafted
    frame = read_dataset(holdout)
    rng = np.random.default_rng(0)
    train = frame.assign(s1=rng.normal(size=len(frame)), s0=rng.normal(size=len(frame)))
    mixed = str(tmp_path / "mixed.parquet")
    write_dataset(
        pd.concat([frame.assign(split=Split.HOLDOUT), train.assign(split=Split.TRAIN)], ignore_index=True), mixed
    )
    all_rows = read_dataset(mixed)
    assert roc_auc(all_rows[TARGET].to_numpy(float), all_rows["s1"].to_numpy()) < models[0].auc  # the trap is set
    _register("bound_holdout", models[:2], task_context)
    _promote(task_context, "bound_holdout", "2", mixed, "r2")
    rejected = _promote(task_context, "bound_holdout", "1", mixed, "r1")
    assert not rejected["promote"]
    assert rejected["champion_score"] == pytest.approx(models[1].auc)
    assert rejected["holdout_rows"] == len(frame)


def test_a_retry_after_a_promotion_returns_the_decision_and_tags_nothing(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context
) -> None:
    holdout, models = crafted
    client = MlflowClient(mlflow_connection)
    _register("bound_retry", models[:2], task_context)
    _promote(task_context, "bound_retry", "1", holdout, "r1")
    won = _promote(task_context, "bound_retry", "2", holdout, "r2")
    tags = client.get_model_version("bound_retry", "2").tags
    retried = _promote(task_context, "bound_retry", "2", holdout, "r2")
    assert retried == won
    assert client.get_model_version("bound_retry", "2").tags == tags
    assert tags[Tag.PROMOTION_DECISION] == PROMOTED and Tag.REJECTED not in tags
    assert aliases(client, "bound_retry") == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}


def test_fail_on_reject_fails_after_recording_the_rejection(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context
) -> None:
    holdout, models = crafted
    client = MlflowClient(mlflow_connection)
    _register("bound_fail_on_reject", models[:2], task_context)
    _promote(task_context, "bound_fail_on_reject", "2", holdout, "r2", fail_on_reject=True)
    with pytest.raises(AirflowFailException, match=r"Version 1 rejected: challenger roc_auc=0\.\d+ vs champion"):
        _promote(task_context, "bound_fail_on_reject", "1", holdout, "r1", fail_on_reject=True)
    tags = client.get_model_version("bound_fail_on_reject", "1").tags
    assert tags[Tag.PROMOTION_DECISION] == REJECTED and tags[Tag.REJECTED]
    assert aliases(client, "bound_fail_on_reject") == {CHAMPION: "2"}
    with pytest.raises(AirflowFailException, match="Version 1 rejected"):  # a retry fails the same way
        _promote(task_context, "bound_fail_on_reject", "1", holdout, "r1", fail_on_reject=True)


def test_an_alias_moved_right_after_the_write_is_reported_not_claimed(
    crafted: tuple[str, list[CraftedModel]],
    mlflow_connection: str,
    task_context: Context,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer outside the lease (someone in the MLflow UI) moves the champion just after the operator's
    write: the read-back must catch it, and the task must not report the version as promoted."""
    holdout, models = crafted
    client = MlflowClient(mlflow_connection)
    _register("bound_reread", models, task_context)
    _promote(task_context, "bound_reread", "1", holdout, "r1")
    original = MlflowClient.set_registered_model_alias
    rogue = MlflowClient(mlflow_connection)

    def write_then_race(self: MlflowClient, name: str, alias: str, version: str) -> None:
        original(self, name, alias, version)
        if alias == CHAMPION:
            original(rogue, name, alias, "3")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", write_then_race)
    with pytest.raises(AliasConflictError, match="was moved concurrently"):
        _promote(task_context, "bound_reread", "2", holdout, "r2")
    assert lease_tickets(client, "bound_reread") == []


def test_a_model_name_with_a_quote_registers_once_and_promotes(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context
) -> None:
    holdout, models = crafted
    name = "churn's model"
    _register(name, models[:1], task_context)
    again = RegisterModelOperator(task_id="register", model_name=name, mlflow_run_id=models[0].mlflow_run_id)
    assert again.execute(task_context("register", "run_0"))["created"] is False  # found by a quoted filter
    assert _promote(task_context, name, "1", holdout, "r1")["promote"]
    client = MlflowClient(mlflow_connection)
    assert aliases(client, name) == {CHAMPION: "1"}
    assert lease_tickets(client, name) == []


def test_a_retry_after_the_version_was_replaced_keeps_its_promotion(
    crafted: tuple[str, list[CraftedModel]], mlflow_connection: str, task_context: Context
) -> None:
    """v2 was promoted, then replaced by v3; a late retry of v2's promotion must not decide again (it would
    be rejected against v3) nor move anything."""
    holdout, models = crafted
    client = MlflowClient(mlflow_connection)
    _register("bound_late_retry", models, task_context)
    first = _promote(task_context, "bound_late_retry", "1", holdout, "r1")
    won = _promote(task_context, "bound_late_retry", "2", holdout, "r2")
    _promote(task_context, "bound_late_retry", "3", holdout, "r3")
    tags = client.get_model_version("bound_late_retry", "2").tags
    assert _promote(task_context, "bound_late_retry", "2", holdout, "r2") == won
    assert client.get_model_version("bound_late_retry", "2").tags == tags  # found as previous_champion
    assert _promote(task_context, "bound_late_retry", "1", holdout, "r1") == first  # found in v2's record
    assert aliases(client, "bound_late_retry") == {CHAMPION: "3", PREVIOUS_CHAMPION: "2"}
