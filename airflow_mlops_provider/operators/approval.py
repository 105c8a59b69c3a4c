"""Human approval of a promotion, with Airflow's human-in-the-loop operators.

``PromoteModelOperator(require_approval=True)`` records a passing decision as pending instead of moving the
aliases. :class:`PromotionApprovalOperator` (an Airflow ``HITLOperator``: the UI's *Required Actions* page
and the REST API's ``hitlDetails``) shows a person the scores, the policy, the lineage and the links, and
asks *Approve* or *Reject* with a reason; it is skipped when no promotion awaits approval.
:class:`ApplyPromotionOperator` applies the answer holding the model's promotion lease: on approval it moves
the aliases as a promotion does (recorded in the champion history with the person as ``by``), on rejection it
tags the version ``rejected`` with the person's reason. When nobody answers in time (``response_timeout``),
the approval task fails and nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops_provider.contracts import CHAMPION, PROMOTED, REJECTED, PromotionRecord, Tag
from airflow_mlops_provider.failpoints import failpoint
from airflow_mlops_provider.hooks.connections import ConnectionsMixin
from airflow_mlops_provider.hooks.mlflow import MlflowHook
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.openlineage_facets import OpenLineageMixin, promotion_lineage
from airflow_mlops_provider.operators.base import MlopsBaseOperator
from airflow_mlops_provider.operators.registry import (
    _client,
    _holder,
    emit_new_champion,
    new_champion_event,
    promote_aliases,
)

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

#: The answers of :class:`PromotionApprovalOperator`.
APPROVE = "Approve"
REJECT = "Reject"
#: The form field of the person's reason.
REASON = "reason"


class PromotionApprovalOperator(ConnectionsMixin, HITLOperator):
    """Ask a person to approve the pending promotion of a model version (Airflow human-in-the-loop).

    The request shows the challenger's and the champion's scores on the same holdout rows, the policy,
    the version's lineage tags and links to both versions in MLflow, with the options *Approve* and
    *Reject* and a ``reason`` field. It appears on the UI's *Required Actions* page and in the REST API
    (``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails``). The task
    returns Airflow's response (``chosen_options``, ``params_input``, ``responded_by_user``, ...) for
    :class:`ApplyPromotionOperator`. It is skipped (so is what follows) when the version awaits no approval:
    ``require_approval`` was off, or the policy rejected it. Without an answer within ``response_timeout``
    it fails (no default answer): nothing is applied.

    :param model_name: the registered model (templated).
    :param version: the version whose promotion is pending (templated; ``register.output["version"]``).
    :param response_timeout: how long to wait for an answer; ``None``: forever.
    :param subject: the request's headline (templated); by default it names the model and version.
    :param mlflow_conn_id: the ``mlflow`` connection.
    """

    template_fields: Sequence[str] = ("subject", "body", "model_name", "version")
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        version: str,
        response_timeout: timedelta | None = None,
        subject: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        for fixed in ("options", "multiple", "defaults"):
            if fixed in kwargs:
                raise ValueError(f"PromotionApprovalOperator sets {fixed!r} itself")
        # The DAG's params arrive here too: the form keeps only the task's own (the DAG's still render).
        kwargs.pop("params", None)
        reason = Param(
            "", type="string", maxLength=1000, source="task", title="Reason",
            description="Why you approve or reject it: recorded on the version and in the champion history",
        )  # fmt: skip
        super().__init__(
            subject=subject or f"Promote {model_name} version {version} to champion?",
            options=[APPROVE, REJECT],
            multiple=False,
            params={REASON: reason},
            response_timeout=response_timeout,
            **kwargs,
        )
        self._set_connections(mlflow_conn_id)
        self.model_name = model_name
        self.version = version

    def execute(self, context: Context) -> Any:
        """Skip unless the version awaits approval; else describe it and wait for the answer."""
        from airflow_mlops_provider.core.models.lineage import alias_version
        from airflow_mlops_provider.core.models.review import approval_brief, pending_record

        hook = self.mlflow_hook
        client = _client(hook)
        version = str(self.version)
        tags = client.get_model_version(self.model_name, version).tags or {}
        record = pending_record(tags)
        if record is None:
            decision = tags.get(Tag.PROMOTION_DECISION, "no decision")
            raise AirflowSkipException(f"Version {version} of {self.model_name} awaits no approval ({decision})")
        url = hook.model_version_url(self.model_name, version)
        MlflowModelVersionLink.persist(context, url)
        champion = alias_version(client, self.model_name, CHAMPION)
        champion_url = hook.model_version_url(self.model_name, champion) if champion else None
        lineage = {key: tags[key] for key in Tag.LINEAGE if tags.get(key)}
        self.body = approval_brief(record, lineage, url, champion_url)
        return super().execute(context)


class ApplyPromotionOperator(OpenLineageMixin, MlopsBaseOperator):
    """Apply a person's answer to a pending promotion, holding the model's promotion lease.

    *Approve*: the record becomes ``promote`` with who approved and why (:attr:`Tag.REVIEWED_BY`,
    :attr:`Tag.REVIEW_REASON`), then ``previous_champion`` and ``champion`` move exactly as
    ``PromoteModelOperator`` moves them, each move recorded in the champion history as kind ``approval``
    with the person as ``by``. *Reject*: the version is tagged ``rejected`` with the person's reason; the
    champion does not change. If the champion moved since the decision was taken, the task fails (no retry)
    and changes nothing: promote the version again to decide against the new champion. A retry finishes
    the moves an earlier try recorded. Returns the updated
    :class:`~airflow_mlops_provider.contracts.PromotionRecord`.

    :param model_name: the registered model (templated).
    :param version: the pending version (templated).
    :param review: the approval task's result (templated; ``approval.output``).
    :param champion_asset: the model's champion Asset, emitted only when the version becomes champion.
    :param lease_ttl: seconds the writes may take once first in line.
    :param lease_wait: the longest to wait for the lease, in seconds.
    """

    template_fields: Sequence[str] = ("model_name", "version", "review")
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        version: str,
        review: Any,
        champion_asset: Asset | None = None,
        lease_ttl: float = 300.0,
        lease_wait: float = 900.0,
        **kwargs: Any,
    ) -> None:
        self.champion_event = new_champion_event(champion_asset)
        super().__init__(**(kwargs if self.champion_event is None else self.champion_event.with_outlet(kwargs)))
        self.model_name = model_name
        self.version = version
        self.review = review
        self.lease_ttl = lease_ttl
        self.lease_wait = lease_wait

    def _answer(self) -> tuple[bool, str, str]:
        """Approved or not, by whom, and why, from the approval task's result."""
        review = self.review if isinstance(self.review, dict) else {}
        chosen = list(review.get("chosen_options") or [])
        if chosen not in ([APPROVE], [REJECT]):
            raise AirflowFailException(f"Not an answer of the approval task: {self.review!r}")
        user = review.get("responded_by_user") or {}
        person = str(user.get("name") or user.get("id") or "unknown") if isinstance(user, dict) else str(user)
        reason = str((review.get("params_input") or {}).get(REASON) or "").strip()
        return chosen == [APPROVE], person, reason

    def execute(self, context: Context) -> PromotionRecord:
        """Apply the answer under the lease; return the updated record."""
        from airflow_mlops_provider.core.models.history import AliasChange, HistoryKind
        from airflow_mlops_provider.core.models.review import reviewed_record

        approved, person, reason = self._answer()
        hook = self.mlflow_hook
        client = _client(hook)
        version = str(self.version)
        MlflowModelVersionLink.persist(context, hook.model_version_url(self.model_name, version))
        holder, try_number = _holder(context)
        with hook.promotion_lease(self.model_name, holder, try_number, self.lease_ttl, self.lease_wait) as lease:
            raw = client.get_model_version(self.model_name, version).tags.get(Tag.PROMOTION)
            if not raw:
                raise AirflowFailException(f"Version {version} of {self.model_name} has no promotion decision")
            record: PromotionRecord = json.loads(raw)
            champion = hook.get_alias_version(self.model_name, CHAMPION)
            if record.get("awaiting_approval"):
                if champion != record.get("champion_version"):
                    raise AirflowFailException(
                        f"The champion of {self.model_name} moved from version {record.get('champion_version')} to "
                        f"{champion} since version {version} was compared with it: nothing was changed; promote "
                        f"version {version} again to decide against the current champion"
                    )
                record = reviewed_record(record, approved, person, reason)
                tags = {Tag.REVIEWED_BY: person, Tag.REVIEW_REASON: reason}
                if approved:
                    tags[Tag.PROMOTION_DECISION] = PROMOTED
                else:
                    tags[Tag.PROMOTION_DECISION] = REJECTED
                    tags[Tag.REJECTED] = f"rejected by {person}" + (f": {reason}" if reason else "")
                tags[Tag.PROMOTION] = json.dumps(record)  # last: the commit a retry reads
                lease.check()
                for key, value in tags.items():
                    client.set_model_version_tag(self.model_name, version, key, value)
                failpoint("registry.after_review")
                self.log.info("%s %s version %s of %s", person, "approved" if approved else "rejected", version,
                              self.model_name)  # fmt: skip
            elif "reviewed_by" not in record:
                raise AirflowFailException(f"Version {version} of {self.model_name} awaits no approval")
            else:
                self.log.info("An earlier try applied the answer of %s", record["reviewed_by"])
            if record["promote"] and champion != version:
                if champion != record.get("champion_version"):
                    raise AirflowFailException(
                        f"The champion of {self.model_name} is version {champion}, neither the compared "
                        f"{record.get('champion_version')} nor {version}: the approved moves cannot be finished safely"
                    )
                why = record.get("review_reason") or record.get("reason", "")
                change = AliasChange(kind=HistoryKind.APPROVAL, task=holder, by=record["reviewed_by"], reason=why)
                promote_aliases(hook, lease, self.model_name, version, champion, change)
        self._openlineage = partial(promotion_lineage, record, hook.tracking_uri)
        emit_new_champion(context, self.champion_event, record)
        return record
