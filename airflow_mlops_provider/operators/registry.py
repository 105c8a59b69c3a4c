"""Model registry operators: idempotent registration, champion/challenger promotion, rollback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider._optional import require_extra
from airflow_mlops_provider.contracts import (
    CHAMPION,
    PENDING_APPROVAL,
    PREVIOUS_CHAMPION,
    PROMOTED,
    REJECTED,
    ProblemType,
    PromotionRecord,
    RegistrationResult,
    RollbackResult,
    RunParam,
    Split,
    Tag,
)
from airflow_mlops_provider.failpoints import failpoint
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.openlineage_facets import (
    OpenLineageMixin,
    promotion_lineage,
    registration_lineage,
    rollback_lineage,
)
from airflow_mlops_provider.operators.base import MlopsBaseOperator
from airflow_mlops_provider.operators.signals import ConditionalAssetEvent

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Asset, Context
    from mlflow import MlflowClient

    from airflow_mlops_provider.core.io.splits import SplitPolicy
    from airflow_mlops_provider.core.models.history import AliasChange
    from airflow_mlops_provider.core.models.lease import PromotionLease
    from airflow_mlops_provider.core.models.promotion import PromotionPolicy
    from airflow_mlops_provider.hooks.mlflow import MlflowHook

#: Registry errors that mean "no such model, version or run": bad input, not worth a retry.
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _client(hook: MlflowHook) -> MlflowClient:
    """The hook's client; a connection that cannot name a server fails the task without retry."""
    try:
        return hook.get_conn()
    except ValueError as err:
        raise AirflowFailException(str(err)) from err


def _holder(context: Context) -> tuple[str, int]:
    """Who takes a promotion lease: ``dag/run/task`` (``[i]`` when mapped), and the try."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    mapped = f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}{mapped}", int(ti.try_number)


def _missing(err: Exception) -> bool:
    return getattr(err, "error_code", None) in _MISSING


def _flag(name: str, value: bool | str) -> bool:
    """A boolean argument that may arrive templated (``"True"``, ``"false"``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "none"):
        return False
    raise AirflowFailException(f"{name} must be true or false, not {value!r}")


def new_champion_event(asset: Asset | None) -> ConditionalAssetEvent | None:
    """The event of ``asset`` that a task emits only when it made a new champion.

    :param asset: the model's champion Asset (``contracts.champion_asset``), or ``None``.
    """
    return None if asset is None else ConditionalAssetEvent(asset, "on_new_champion")


def emit_new_champion(context: Context, event: ConditionalAssetEvent | None, record: PromotionRecord) -> None:
    """Emit the champion Asset event when ``record`` made its version champion.

    :param context: the task's context.
    :param event: :func:`new_champion_event` of the champion Asset.
    :param record: the promotion record the task returns.
    """
    if event is None or not record.get("promote"):
        return
    event.emit(context, {key: record.get(key) for key in ("model_name", "version", "champion_version", "metric")})


def promote_aliases(
    hook: MlflowHook, lease: PromotionLease, model_name: str, version: str, champion: str | None, change: AliasChange
) -> None:
    """``previous_champion`` to the old champion, then ``champion`` to ``version``, checking the lease before
    each write; each move appends its history entry (:meth:`MlflowHook.move_alias`).

    :param hook: the MLflow hook.
    :param lease: the model's promotion lease, held.
    :param model_name: the registered model.
    :param version: the new champion.
    :param champion: the champion it replaces (``None``: the first).
    :param change: why (kind, task, who, reason), for the history.
    """
    if champion is not None:
        previous = hook.get_alias_version(model_name, PREVIOUS_CHAMPION)
        lease.check()
        hook.move_alias(model_name, PREVIOUS_CHAMPION, champion, expected_current=previous, change=change)
        failpoint("registry.between_aliases")
    lease.check()
    hook.move_alias(model_name, CHAMPION, version, expected_current=champion, change=change)


class RegisterModelOperator(OpenLineageMixin, MlopsBaseOperator):
    """Register a run's model as a new version, once: a version made from the same run is reused.

    Lineage from the run (:attr:`Tag.LINEAGE`: dataset URI and digest, split policy and holdout digest,
    feature service, data window, DAG and run ids, trainer backend and image) goes on the version as tags. Returns a
    :class:`~airflow_mlops_provider.contracts.RegistrationResult`: ``{model_name, version, mlflow_run_id,
    model_uri, created}``. A run that does not exist or logged no model fails the task without retry.

    :param model_name: the registered model (created when missing).
    :param mlflow_run_id: the MLflow run that logged the model (templated; usually
        ``train.output["mlflow_run_id"]``).
    :param model_uri: the model's URI (templated); by default the run's :attr:`Tag.MODEL_URI` tag.
    :param tags: extra version tags (templated).
    """

    template_fields: Sequence[str] = ("model_name", "mlflow_run_id", "model_uri", "tags")
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        mlflow_run_id: str,
        model_uri: str | None = None,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.mlflow_run_id = mlflow_run_id
        self.model_uri = model_uri
        self.tags = tags or {}

    def execute(self, context: Context) -> RegistrationResult:
        """Find or create the version of this run, and tag it with lineage."""
        from mlflow.exceptions import MlflowException

        hook = self.mlflow_hook
        client = _client(hook)
        try:
            run = client.get_run(self.mlflow_run_id)
        except MlflowException as err:
            if not _missing(err):
                raise
            raise AirflowFailException(
                f"MLflow run {self.mlflow_run_id!r} does not exist on {hook.tracking_uri}"
            ) from err
        model_uri = self.model_uri or run.data.tags.get(Tag.MODEL_URI)
        if not model_uri:
            raise AirflowFailException(f"Run {self.mlflow_run_id} has no logged model (no {Tag.MODEL_URI} tag)")
        ti = context["ti"]
        lineage = {key: run.data.tags[key] for key in Tag.LINEAGE if run.data.tags.get(key)}
        lineage |= {
            Tag.REGISTERED_BY: f"{ti.dag_id}/{ti.run_id}/{ti.task_id}",
            Tag.MODEL_URI: model_uri,
            **{key: str(value) for key, value in self.tags.items()},
        }
        try:
            existing = hook.find_version_by_run_id(self.model_name, self.mlflow_run_id)
        except ValueError as err:
            raise AirflowFailException(f"Model name {self.model_name!r} cannot be registered: {err}") from err
        if existing is not None:
            version, created, current = str(existing.version), False, dict(existing.tags or {})
            self.log.info(
                "Run %s is already version %s of %s; reusing it", self.mlflow_run_id, version, self.model_name
            )
        else:
            import mlflow

            try:
                registered = mlflow.register_model(model_uri, self.model_name, tags=lineage)
            except MlflowException as err:
                if err.error_code != "INVALID_PARAMETER_VALUE":
                    raise
                raise AirflowFailException(f"Cannot register {model_uri} as {self.model_name!r}: {err}") from err
            version, created, current = str(registered.version), True, dict(registered.tags or {})
            self.log.info("Registered %s version %s from run %s", self.model_name, version, self.mlflow_run_id)
        failpoint("registry.after_register")
        for key, value in lineage.items():
            if current.get(key) != value:
                client.set_model_version_tag(self.model_name, version, key, value)
        MlflowModelVersionLink.persist(context, hook.model_version_url(self.model_name, version))
        result = RegistrationResult(
            model_name=self.model_name,
            version=version,
            mlflow_run_id=self.mlflow_run_id,
            model_uri=f"models:/{self.model_name}/{version}",
            created=created,
        )
        dataset = run.data.tags.get(Tag.DATASET_URI), run.data.tags.get(Tag.DATASET_DIGEST)
        self._openlineage = partial(registration_lineage, result, hook.tracking_uri, model_uri, *dataset)
        return result


class PromoteModelOperator(OpenLineageMixin, MlopsBaseOperator):
    """The champion/challenger gate.

    Scores the challenger version and the current champion on the **same** holdout rows: the rows the
    trainer held out. The challenger's run records its split policy (:attr:`RunParam.SPLIT_POLICY`; runs
    without one: the column policy on their split column) and the digest of its holdout rows
    (:attr:`Tag.HOLDOUT_DIGEST`); the policy is applied to ``holdout_uri`` and the ``holdout`` rows it
    gives must have that digest, else the task fails (no retry) before anything is tagged or moved. So does
    a bad policy (an unknown metric, a bar or margin that is not a finite number in the metric's range) or
    a version that does not exist.

    The decision is serialized per model: it is taken holding the model's promotion lease
    (:mod:`~airflow_mlops_provider.core.models.lease`), against the champion current at that moment, so
    racing promotions queue and each compares with the one before. On pass, alias ``champion`` moves to the
    challenger and ``previous_champion`` to the old champion. On fail, the version is tagged ``rejected``
    with the reason, and the task fails only when ``fail_on_reject`` is set. A first model becomes champion
    when it meets ``min_value``. The decision is recorded on the version (the :attr:`Tag.PROMOTION` record
    and :attr:`Tag.PROMOTION_TAGS`) before the aliases move, and returned: a
    :class:`~airflow_mlops_provider.contracts.PromotionRecord`. A retry returns the recorded decision (and
    finishes its alias moves) unless the champion moved since, in which case it decides again. Every alias
    move is appended to the model's champion history (:mod:`~airflow_mlops_provider.core.models.history`).

    With ``require_approval``, a passing decision is recorded as :data:`PENDING_APPROVAL` (``promote`` false,
    ``awaiting_approval`` true) and the aliases do not move: ``PromotionApprovalOperator`` asks a person and
    ``ApplyPromotionOperator`` applies the answer. A rejection by the policy is applied as without it.
    With ``champion_asset``, that Asset gets an event (through an ``AssetAlias``) only when the task made
    a new champion.

    :param model_name: the registered model.
    :param version: the challenger version (templated; usually ``register.output["version"]``).
    :param holdout_uri: the dataset the challenger was trained on (its holdout rows are taken with the
        run's split policy), local path or ``s3://`` (templated).
    :param target: the label column.
    :param problem_type: ``binary`` or ``regression``.
    :param metric: the policy metric, e.g. ``roc_auc``.
    :param direction: ``maximize`` or ``minimize``; by default the metric's natural direction.
    :param min_value: the absolute bar; ``None`` for none (templated).
    :param min_improvement: the required margin over the champion, in metric units (templated).
    :param fail_on_reject: fail the task when the challenger is rejected.
    :param lease_ttl: seconds the decision may take once first in line; after it (and ``lease_wait``),
        waiters take the lease over.
    :param lease_wait: the longest to wait for the lease, in seconds (then the task fails, retryable).
    :param require_approval: a passing decision waits for a person's approval (templated: ``true``/``false``).
    :param champion_asset: the model's champion Asset, emitted only on a new champion.
    """

    template_fields: Sequence[str] = (
        "model_name", "version", "holdout_uri", "metric", "min_value", "min_improvement", "require_approval",
    )  # fmt: skip
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        version: str,
        holdout_uri: str,
        target: str,
        problem_type: str = ProblemType.BINARY,
        metric: str = "roc_auc",
        direction: str | None = None,
        min_value: float | str | None = None,
        min_improvement: float | str = 0.0,
        fail_on_reject: bool = False,
        lease_ttl: float = 300.0,
        lease_wait: float = 900.0,
        require_approval: bool | str = False,
        champion_asset: Asset | None = None,
        **kwargs: Any,
    ) -> None:
        self.champion_event = new_champion_event(champion_asset)
        super().__init__(**(kwargs if self.champion_event is None else self.champion_event.with_outlet(kwargs)))
        self.model_name = model_name
        self.version = version
        self.holdout_uri = holdout_uri
        self.target = target
        self.problem_type = problem_type
        self.metric = metric
        self.direction = direction
        self.min_value = min_value
        self.min_improvement = min_improvement
        self.fail_on_reject = fail_on_reject
        self.lease_ttl = lease_ttl
        self.lease_wait = lease_wait
        self.require_approval = require_approval

    def _policy(self) -> PromotionPolicy:
        from airflow_mlops_provider.core.models.promotion import PromotionPolicy

        try:
            return PromotionPolicy.parse(
                self.metric, self.direction, self.min_value, self.min_improvement, self.problem_type
            )
        except ValueError as err:
            raise AirflowFailException(f"Bad promotion policy for {self.model_name!r}: {err}") from err

    def execute(self, context: Context) -> PromotionRecord:
        """Take the trainer's holdout rows, score the challenger, then, holding the model's lease, score the
        champion, decide, record the decision and move the aliases."""
        require_extra("trainer")
        policy = self._policy()
        self._approval = _flag("require_approval", self.require_approval)
        hook = self.mlflow_hook
        client = _client(hook)
        version = str(self.version)
        self._check_version(client, version)
        MlflowModelVersionLink.persist(context, hook.model_version_url(self.model_name, version))
        holdout, holdout_digest = self._holdout(client, version)
        challenger_score = self._score(f"models:/{self.model_name}/{version}", holdout)
        holder, try_number = _holder(context)
        with hook.promotion_lease(self.model_name, holder, try_number, self.lease_ttl, self.lease_wait) as lease:
            recorded = self._recorded(client, version, hook.get_alias_version(self.model_name, CHAMPION), lease)
            if recorded is None:
                recorded = self._decide(client, lease, version, holdout, holdout_digest, challenger_score, policy)
        self._openlineage = partial(promotion_lineage, recorded, hook.tracking_uri)
        emit_new_champion(context, self.champion_event, recorded)
        if not recorded["promote"] and not recorded.get("awaiting_approval") and self.fail_on_reject:
            raise AirflowFailException(f"Version {version} rejected: {recorded['reason']}")
        return recorded

    def _check_version(self, client: MlflowClient, version: str) -> None:
        """Fail without retry when the challenger version (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            client.get_model_version(self.model_name, version)
        except MlflowException as err:
            if not _missing(err):
                raise
            raise AirflowFailException(
                f"Version {version!r} of model {self.model_name!r} is not registered on "
                f"{self.mlflow_hook.tracking_uri}: register it first"
            ) from err

    def _recorded(
        self, client: MlflowClient, version: str, champion: str | None, lease: PromotionLease
    ) -> PromotionRecord | None:
        """The decision an earlier try took, finishing its alias moves; ``None`` when there is none to keep
        (never decided, or the champion moved since a "promote" was recorded: decide again)."""
        tag = client.get_model_version(self.model_name, version).tags.get(Tag.PROMOTION)
        if tag is None:
            if champion != version:
                return None
            self.log.info("Version %s is already %s, with no recorded decision", version, CHAMPION)
            return PromotionRecord(model_name=self.model_name, version=version, promote=True)
        recorded: PromotionRecord = json.loads(tag)
        if recorded.get("awaiting_approval"):
            self.log.info("Version %s awaits approval, as an earlier try recorded: %s", version, recorded["reason"])
            return recorded
        if champion == version or not recorded["promote"] or self._was_champion(client, version):
            self.log.info("Version %s was decided by an earlier try: %s", version, recorded["reason"])
            return recorded
        if champion == recorded.get("champion_version"):
            self.log.info("Finishing the alias moves of the decision an earlier try recorded")
            self._move_aliases(lease, version, champion, recorded["reason"])
            return recorded
        self.log.warning("The recorded decision compared with version %s, but %s is now %s: deciding again",
                         recorded.get("champion_version"), CHAMPION, champion)  # fmt: skip
        return None

    def _was_champion(self, client: MlflowClient, version: str) -> bool:
        """Whether ``version`` has been champion since: rolled back, now ``previous_champion``, or the champion
        a later decision compared with (its moves were done; a retry must not decide again)."""
        from airflow_mlops_provider.core.models.lineage import filter_value

        if Tag.ROLLED_BACK in client.get_model_version(self.model_name, version).tags:
            return True
        if self.mlflow_hook.get_alias_version(self.model_name, PREVIOUS_CHAMPION) == version:
            return True
        query = (
            f"name = {filter_value(self.model_name)} "
            f"and tags.`{Tag.PROMOTION_CHAMPION_VERSION}` = {filter_value(version)}"
        )
        return bool(client.search_model_versions(query))

    def _decide(
        self,
        client: MlflowClient,
        lease: PromotionLease,
        version: str,
        holdout: pd.DataFrame,
        holdout_digest: str,
        challenger_score: float,
        policy: PromotionPolicy,
    ) -> PromotionRecord:
        """Score the current champion, decide, record the decision on the version, then move the aliases."""
        from airflow_mlops_provider.core.models.promotion import decide_promotion

        champion = self.mlflow_hook.get_alias_version(self.model_name, CHAMPION)
        champion_score = self._score(f"models:/{self.model_name}/{champion}", holdout) if champion else None
        decision = decide_promotion(challenger_score, champion_score, policy)
        pending = decision.promote and self._approval
        record = PromotionRecord(
            **decision.to_record(),
            model_name=self.model_name,
            version=version,
            champion_version=champion,
            holdout_uri=self.holdout_uri,
            holdout_digest=holdout_digest,
            holdout_rows=len(holdout),
        )
        if pending:  # the aliases wait for a person: ApplyPromotionOperator moves them on approval
            record["promote"], record["awaiting_approval"] = False, True
        self.log.info(
            "Promotion decision for %s v%s: %s%s",
            self.model_name, version, decision.reason, " (awaiting approval)" if pending else "",
        )  # fmt: skip
        tags = {
            Tag.PROMOTION: json.dumps(record),
            Tag.PROMOTION_DECISION: PENDING_APPROVAL if pending else PROMOTED if decision.promote else REJECTED,
            Tag.PROMOTION_REASON: decision.reason,
            Tag.PROMOTION_CHALLENGER_SCORE: str(challenger_score),
            Tag.PROMOTION_CHAMPION_SCORE: str(champion_score),
            Tag.PROMOTION_CHAMPION_VERSION: str(champion),
        }
        if not decision.promote:
            tags[Tag.REJECTED] = decision.reason
        lease.check()
        # The record goes first (Tag.PROMOTION last, as the commit): a retry finds it and finishes the moves.
        for key, value in sorted(tags.items(), key=lambda item: item[0] == Tag.PROMOTION):
            client.set_model_version_tag(self.model_name, version, key, value)
        failpoint("registry.after_decision")
        if record["promote"]:
            self._move_aliases(lease, version, champion, record["reason"])
        return record

    def _move_aliases(self, lease: PromotionLease, version: str, champion: str | None, reason: str = "") -> None:
        """``previous_champion`` to the old champion, then ``champion`` to ``version``, checking the lease."""
        from airflow_mlops_provider.core.models.history import AliasChange, HistoryKind

        change = AliasChange(kind=HistoryKind.PROMOTION, task=lease.holder, reason=reason)
        promote_aliases(self.mlflow_hook, lease, self.model_name, version, champion, change)

    def _holdout(self, client: MlflowClient, version: str) -> tuple[pd.DataFrame, str]:
        """The trainer's holdout rows of ``holdout_uri`` and their digest, checked against the recorded one."""
        from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset
        from airflow_mlops_provider.core.models.evaluation import HoldoutMismatchError, check_holdout, holdout_rows

        split, recorded_digest, mlflow_run_id = self._trainers_holdout(client, version)
        try:
            data = read_dataset(self.holdout_uri, store=self.storage_hook.get_conn())
            if recorded_digest is None and split.reads_column and split.column not in data.columns:
                # A run from before split policies, scored on a holdout-only file: every row, as then.
                self.log.warning("%s has no %r column: all its rows are the holdout", self.holdout_uri, split.column)
                data = data.assign(**{split.column: Split.HOLDOUT})
            holdout = holdout_rows(data, split, self.target)
        except (ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"Cannot use holdout data {self.holdout_uri}: {err}") from err
        if recorded_digest is None:
            self.log.warning(
                "Run %s recorded no %s (trained before split policies): the holdout rows cannot be checked",
                mlflow_run_id, Tag.HOLDOUT_DIGEST,
            )  # fmt: skip
            holdout_digest = dataset_digest(holdout)
        else:
            try:
                holdout_digest = check_holdout(holdout, recorded_digest, self.holdout_uri)
            except HoldoutMismatchError as err:
                raise AirflowFailException(f"Version {version} of {self.model_name} not scored: {err}") from err
        self.log.info(
            "Holdout: %d rows of %s under %s, digest %s",
            len(holdout),
            self.holdout_uri,
            split.to_json(),
            holdout_digest,
        )
        return holdout, holdout_digest

    def _trainers_holdout(self, client: MlflowClient, version: str) -> tuple[SplitPolicy, str | None, str | None]:
        """The split policy the challenger's run recorded (else the column policy on its split column), the
        digest of the holdout rows it recorded (``None`` for runs before split policies), and the run's id."""
        from airflow_mlops_provider.core.io.splits import SplitError, SplitPolicy

        mlflow_run_id = client.get_model_version(self.model_name, version).run_id or None
        run = client.get_run(mlflow_run_id) if mlflow_run_id else None
        params = run.data.params if run else {}
        recorded = params.get(RunParam.SPLIT_POLICY)
        try:
            if recorded:
                split = SplitPolicy.from_json(recorded)
            else:
                split = SplitPolicy.existing(params.get(RunParam.SPLIT_COLUMN) or Split.COLUMN)
        except SplitError as err:
            raise AirflowFailException(f"Run {mlflow_run_id} records an unusable split policy: {err}") from err
        return split, (run.data.tags.get(Tag.HOLDOUT_DIGEST) if run else None), mlflow_run_id

    def _score(self, model_uri: str, holdout: pd.DataFrame) -> float:
        from airflow_mlops_provider.core.models.evaluation import score_model

        try:
            return score_model(model_uri, holdout, self.target, self.problem_type)[self.metric]
        except ValueError as err:
            raise AirflowFailException(f"Cannot score {model_uri} on the holdout data: {err}") from err


class RollbackModelOperator(OpenLineageMixin, MlopsBaseOperator):
    """Restore the champion before the current one, and tag the demoted version (:attr:`Tag.ROLLED_BACK`).

    Which version that is comes from the model's champion history
    (:mod:`~airflow_mlops_provider.core.models.history`): the version the current champion replaced when it
    was promoted (or approved). Models without that history (promoted before it existed) fall back to the
    ``previous_champion`` alias. The move is recorded in the history (kind ``rollback``). It holds the
    model's promotion lease, as promotions do, so it never interleaves with one. A retry finishes the
    rollback its earlier try recorded instead of rolling back again. Returns a
    :class:`~airflow_mlops_provider.contracts.RollbackResult`: ``{model_name, champion, demoted}``.

    :param model_name: the registered model.
    :param reason: why, recorded on the demoted version and in the history (templated).
    :param lease_ttl: seconds the rollback may take while holding the lease.
    :param lease_wait: the longest to wait for the lease, in seconds.
    """

    template_fields: Sequence[str] = ("model_name", "reason")
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        reason: str = "manual rollback",
        lease_ttl: float = 300.0,
        lease_wait: float = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.reason = reason
        self.lease_ttl = lease_ttl
        self.lease_wait = lease_wait

    def execute(self, context: Context) -> RollbackResult:
        """Move ``champion`` back to the champion before it, holding the model's promotion lease."""
        from airflow_mlops_provider.core.models.history import AliasChange, HistoryKind

        hook = self.mlflow_hook
        client = _client(hook)
        holder, try_number = _holder(context)
        self._target(client, holder)  # before taking the lease: a model with nothing to restore gets no lease
        with hook.promotion_lease(self.model_name, holder, try_number, self.lease_ttl, self.lease_wait) as lease:
            champion, previous = self._target(client, holder)
            if champion != previous:
                lease.check()
                if champion is not None:
                    client.set_model_version_tag(self.model_name, champion, Tag.ROLLED_BACK, self.reason)
                change = AliasChange(kind=HistoryKind.ROLLBACK, task=holder, reason=self.reason)
                hook.move_alias(self.model_name, CHAMPION, previous, expected_current=champion, change=change)
                self.log.info("Rolled %s back from version %s to %s", self.model_name, champion, previous)
        MlflowModelVersionLink.persist(context, hook.model_version_url(self.model_name, previous))
        result = RollbackResult(model_name=self.model_name, champion=previous, demoted=champion)
        self._openlineage = partial(rollback_lineage, self.model_name, previous, hook.tracking_uri)
        return result

    def _target(self, client: MlflowClient, holder: str) -> tuple[str | None, str]:
        """The current champion and the version to restore: this task's own recorded rollback (a retry), else
        the champion the current one replaced, by the history, else ``previous_champion``."""
        from airflow_mlops_provider.core.models.history import (
            HistoryKind,
            UnknownModelError,
            promotion_of,
            read_history,
        )

        try:
            entries = read_history(client, self.model_name)
        except UnknownModelError as err:
            raise AirflowFailException(f"{err} on {self.mlflow_hook.tracking_uri}: nothing to roll back") from err
        mine = [e for e in entries if e.task == holder and e.kind == HistoryKind.ROLLBACK and e.alias == CHAMPION]
        if mine:  # an earlier try recorded this rollback (the entry is written before the move): finish it
            return mine[-1].from_version, mine[-1].to_version
        champion = self.mlflow_hook.get_alias_version(self.model_name, CHAMPION)
        promoted = promotion_of(entries, champion) if champion is not None else None
        if promoted is not None:
            if promoted.from_version is None:
                raise AirflowFailException(
                    f"Version {champion} of {self.model_name} was its first champion (history entry "
                    f"{promoted.seq}): there is no earlier champion to roll back to"
                )
            return champion, promoted.from_version
        previous = self.mlflow_hook.get_alias_version(self.model_name, PREVIOUS_CHAMPION)
        if previous is None:
            raise AirflowFailException(f"{self.model_name} has no {PREVIOUS_CHAMPION!r} to roll back to")
        return champion, previous
