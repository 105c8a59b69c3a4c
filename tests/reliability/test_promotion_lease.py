"""The promotion lease on a real MLflow server: order, waiting, expiry, earlier tries, and a rollback
that queues behind a promotion."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PREVIOUS_CHAMPION, Tag
from airflow_mlops_provider.core.models.lease import LeaseLostError, LeaseTimeoutError, PromotionLease, lease_name
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator, RollbackModelOperator
from tests.reliability.registry_models import TARGET, aliases, craft_models, lease_tickets

pytestmark = pytest.mark.integration
Context = Callable[..., dict[str, Any]]


def test_a_second_holder_waits_then_times_out_naming_the_holder(mlflow_connection: str) -> None:
    client = MlflowClient(mlflow_connection)
    with PromotionLease(client, "lease_wait", "ct/run_a/promote") as first:
        assert first.ticket is not None
        second = PromotionLease(client, "lease_wait", "ct/run_b/promote", wait=1.0)
        started = time.monotonic()
        with pytest.raises(LeaseTimeoutError, match=r"'lease_wait' stayed held for 1 s: ct/run_a/promote \(try 1\)"):
            second.acquire()
        assert 1.0 <= time.monotonic() - started < 10
        assert lease_tickets(client, "lease_wait") == [str(first.ticket.number)]  # the waiter gave its ticket up
        first.check()
    assert lease_tickets(client, "lease_wait") == []


def test_an_expired_holder_is_taken_over_and_can_no_longer_write(mlflow_connection: str) -> None:
    client = MlflowClient(mlflow_connection)
    stale = PromotionLease(client, "lease_expiry", "ct/run_a/promote", ttl=0.5, wait=0)  # valid 0.5 s
    stale.acquire()
    time.sleep(0.6)
    with PromotionLease(client, "lease_expiry", "ct/run_b/promote", wait=5) as fresh:
        with pytest.raises(LeaseLostError, match="expired"):
            stale.check()
        fresh.check()
        assert lease_tickets(client, "lease_expiry") == [str(fresh.ticket.number)]  # type: ignore[union-attr]
    stale.release()  # its ticket is already gone: a no-op
    assert lease_tickets(client, "lease_expiry") == []


def test_a_retry_removes_the_ticket_of_the_try_that_died(mlflow_connection: str) -> None:
    client = MlflowClient(mlflow_connection)
    killed = PromotionLease(client, "lease_retry", "ct/run_a/promote", try_number=1)
    killed.acquire()  # never released: the worker died
    with PromotionLease(client, "lease_retry", "ct/run_a/promote", try_number=2, wait=2):
        assert len(lease_tickets(client, "lease_retry")) == 1
    # A different task is not mistaken for an earlier try.
    other = PromotionLease(client, "lease_retry", "ct/run_a/promote", try_number=1)
    other.acquire()
    with pytest.raises(LeaseTimeoutError):
        PromotionLease(client, "lease_retry", "ct/run_b/promote", wait=0.5).acquire()
    other.release()


def test_tickets_are_served_in_order(mlflow_connection: str) -> None:
    client = MlflowClient(mlflow_connection)
    served: list[str] = []
    first = PromotionLease(client, "lease_order", "ct/first/promote")
    first.acquire()

    def take(holder: str) -> None:
        with PromotionLease(MlflowClient(mlflow_connection), "lease_order", holder, wait=60):
            served.append(holder)

    waiters = []
    for name in ("second", "third", "fourth"):
        waiters.append(threading.Thread(target=take, args=(f"ct/{name}/promote",)))
        waiters[-1].start()
        deadline = time.monotonic() + 30
        while len(lease_tickets(client, "lease_order")) < len(waiters) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    first.release()
    for waiter in waiters:
        waiter.join(60)
    assert served == ["ct/second/promote", "ct/third/promote", "ct/fourth/promote"]
    assert client.get_registered_model(lease_name("lease_order")).name == "lease_order.promotion-lease"


def test_a_rollback_waits_for_the_lease_and_then_restores(
    mlflow_connection: str, tmp_path: Path, task_context: Context
) -> None:
    holdout, models = craft_models(mlflow_connection, tmp_path, [0.7, 0.9], seed=9)
    model = "lease_rollback"
    for i, crafted in enumerate(models):
        RegisterModelOperator(task_id="register", model_name=model, mlflow_run_id=crafted.mlflow_run_id).execute(
            task_context("register", f"run_{i}")
        )
        PromoteModelOperator(
            task_id="promote", model_name=model, version=str(i + 1), holdout_uri=holdout, target=TARGET
        ).execute(task_context("promote", f"run_{i}"))
    client = MlflowClient(mlflow_connection)
    assert aliases(client, model) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    done: dict[str, Any] = {}
    with PromotionLease(client, model, "ct/a_promotion/promote"):
        rollback = threading.Thread(
            target=lambda: done.update(
                RollbackModelOperator(task_id="rollback", model_name=model).execute(task_context("rollback"))
            )
        )
        rollback.start()
        time.sleep(2)
        assert done == {} and aliases(client, model)[CHAMPION] == "2"  # waiting for the lease
    rollback.join(60)
    assert done == {"model_name": model, "champion": "1", "demoted": "2"}
    assert aliases(client, model)[CHAMPION] == "1"
    assert client.get_model_version(model, "2").tags[Tag.ROLLED_BACK] == "manual rollback"
    assert lease_tickets(client, model) == []
