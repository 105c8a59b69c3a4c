"""A lease per registered model that serializes its promotions and rollbacks (Airflow-free).

MLflow has no compare-and-set on aliases or tags. What its registry does allocate atomically is a model
version number: unique per model (the SQL store's primary key) and, while a version exists, never handed
out again. So the lease of model ``m`` is the registered model ``m`` + :data:`PROMOTION_LEASE_SUFFIX`,
and its versions are tickets, served in order (a bakery):

1. take a ticket: create a version with the holder (``dag/run/task``), its try and an expiry as tags;
2. hold the lease once no lower-numbered ticket is left; meanwhile wait with bounded backoff, deleting
   tickets that expired (their holder died or overran) and the tickets of earlier tries of the same task
   (Airflow never runs two tries of a task instance at once);
3. release: delete the ticket (in ``finally``; a killed holder's ticket expires, or its retry removes it).

A holder checks that it still holds its ticket before each write (:meth:`PromotionLease.check`): if it
overran its expiry and a waiter took over, it fails instead of writing over the new holder's decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from airflow_mlops_provider.contracts import PROMOTION_LEASE_SUFFIX, Tag
from airflow_mlops_provider.core.models.lineage import filter_value

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

#: What a ticket's ``source`` says (a registry version needs one; nothing is ever loaded from it).
TICKET_SOURCE = "mlops-lease:/ticket"


class LeaseTimeoutError(TimeoutError):
    """The lease stayed held by others for longer than the caller would wait."""


class LeaseLostError(RuntimeError):
    """The holder's ticket expired and another holder took the lease over: writing now would be unsafe."""


def lease_name(model_name: str) -> str:
    """The registered model whose versions are the tickets of ``model_name``'s lease.

    :param model_name: the registered model promotions of which are serialized.
    """
    return f"{model_name}{PROMOTION_LEASE_SUFFIX}"


@dataclass(frozen=True)
class Ticket:
    """A place in the lease's queue.

    :param number: the version number of the ticket (its place).
    :param holder: who took it: ``dag/run/task`` (with ``[map_index]`` for mapped tasks).
    :param try_number: the holder's try.
    :param expires_at: epoch seconds after which waiters may delete it.
    """

    number: int
    holder: str
    try_number: int
    expires_at: float

    @classmethod
    def of(cls, version: ModelVersion) -> Ticket:
        """Read a ticket from its registry version (a ticket without valid tags is treated as expired).

        :param version: a version of a lease's registered model.
        """
        tags = version.tags or {}
        try:
            expires_at = float(tags.get(Tag.LEASE_EXPIRES_AT, "0"))
            try_number = int(tags.get(Tag.LEASE_TRY, "0"))
        except ValueError:
            expires_at, try_number = 0.0, 0
        return cls(int(version.version), tags.get(Tag.LEASE_HOLDER, "?"), try_number, expires_at)


class PromotionLease:
    """Hold the promotion lease of one registered model, as a context manager.

    :param client: an MLflow client of the registry.
    :param model_name: the registered model.
    :param holder: who holds it, e.g. ``dag/run/task``; tickets of the same holder with a lower try are
        earlier tries of the same task, deleted on sight.
    :param try_number: the holder's try.
    :param ttl: seconds a holder has for its decision once first in line (a ticket is valid for
        ``wait + ttl`` seconds from when it is taken).
    :param wait: the longest the caller waits for the lease, in seconds.
    :param clock: the time source (epoch seconds), shared by all holders (they compare expiries).
    :param sleep: how to wait between polls.
    """

    def __init__(
        self,
        client: MlflowClient,
        model_name: str,
        holder: str,
        try_number: int = 1,
        ttl: float = 300.0,
        wait: float = 900.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if ttl <= 0 or wait < 0:
            raise ValueError(f"lease ttl must be > 0 and wait >= 0, not ttl={ttl}, wait={wait}")
        self.client = client
        self.model_name = model_name
        self.name = lease_name(model_name)
        self.holder = holder
        self.try_number = try_number
        self.ttl = ttl
        self.wait = wait
        self.clock = clock
        self.sleep = sleep
        self.ticket: Ticket | None = None

    def __enter__(self) -> PromotionLease:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is None:
            self.release()
            return
        try:  # do not hide the error that ended the decision (e.g. the server went away)
            self.release()
        except Exception:
            log.warning("Could not release the promotion lease of %s; it expires or a retry frees it", self.model_name)

    def acquire(self) -> None:
        """Take a ticket and wait until it is first in line.

        :raises LeaseTimeoutError: others held the lease for longer than ``wait`` (the ticket is given up).
        """
        self._ensure_lease_model()
        # Valid while its holder may legitimately wait, then for the decision: a live waiter is never
        # mistaken for a dead one, and the holder always has ``ttl`` seconds once first in line.
        expires_at = self.clock() + self.wait + self.ttl
        version = self.client.create_model_version(
            self.name,
            source=TICKET_SOURCE,
            tags={
                Tag.LEASE_HOLDER: self.holder,
                Tag.LEASE_TRY: str(self.try_number),
                Tag.LEASE_EXPIRES_AT: str(expires_at),
            },
            description=f"Promotion lease ticket of {self.holder} (try {self.try_number})",
        )
        self.ticket = Ticket(int(version.version), self.holder, self.try_number, expires_at)
        deadline = self.clock() + self.wait
        delay = 0.05
        while True:
            ahead = self._tickets_ahead()
            if not ahead:
                log.info("Holding the promotion lease of %s (ticket %d)", self.model_name, self.ticket.number)
                return
            now = self.clock()
            if now >= deadline:
                first = ahead[0]
                self.release()
                raise LeaseTimeoutError(
                    f"The promotion lease of {self.model_name!r} stayed held for {self.wait:.0f} s: "
                    f"{first.holder} (try {first.try_number}) holds it until {time.ctime(first.expires_at)}, "
                    f"{len(ahead)} ticket(s) ahead; retry later"
                )
            self.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 2.0)

    def check(self) -> None:
        """Make sure this holder still holds the lease, just before a write.

        :raises LeaseLostError: the ticket is gone or expired (a waiter may have taken over).
        """
        if self.ticket is None:
            raise LeaseLostError(f"The promotion lease of {self.model_name!r} is not held")
        mine = [t for t in self._tickets() if t.number == self.ticket.number]
        if not mine or self.clock() >= mine[0].expires_at:
            raise LeaseLostError(
                f"The promotion lease of {self.model_name!r} expired (ttl {self.ttl:.0f} s) before the decision "
                "was written; nothing was written, retry"
            )

    def release(self) -> None:
        """Give up the ticket (a no-op when none is held)."""
        if self.ticket is not None:
            self._delete(self.ticket.number)
            self.ticket = None

    def _ensure_lease_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(
                self.name, description=f"Promotion lease of {self.model_name}: each version is a ticket (mlops)"
            )
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _tickets(self) -> list[Ticket]:
        versions = self.client.search_model_versions(f"name = {filter_value(self.name)}")
        return sorted((Ticket.of(v) for v in versions), key=lambda t: t.number)

    def _tickets_ahead(self) -> list[Ticket]:
        """The live tickets ahead of ours, after deleting the expired ones and our own earlier tries'."""
        assert self.ticket is not None
        now = self.clock()
        ahead = []
        for ticket in self._tickets():
            if ticket.number >= self.ticket.number:
                continue
            if ticket.holder == self.holder and ticket.try_number < self.try_number:
                log.info("Deleting ticket %d of an earlier try (%d) of this task", ticket.number, ticket.try_number)
                self._delete(ticket.number)
            elif ticket.expires_at <= now:
                log.warning("Deleting expired lease ticket %d of %s", ticket.number, ticket.holder)
                self._delete(ticket.number)
            else:
                ahead.append(ticket)
        return ahead

    def _delete(self, number: int) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_model_version(self.name, str(number))
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
