"""The approval operators without a server: Airflow's HITL request they make, how the answer is read, and
what the person is shown. Under a real scheduler, answered through the REST API:
tests/integration/test_approval_scheduler.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider.contracts import Tag, champion_asset
from airflow_mlops_provider.core.models.review import approval_brief, pending_record, reviewed_record
from airflow_mlops_provider.operators.approval import (
    APPROVE,
    REJECT,
    ApplyPromotionOperator,
    PromotionApprovalOperator,
)
from airflow_mlops_provider.operators.registry import _flag


def _apply(review: object) -> ApplyPromotionOperator:
    return ApplyPromotionOperator(task_id="apply", model_name="m", version="2", review=review)


def test_the_approval_is_an_airflow_hitl_request_with_a_reason_field() -> None:
    op = PromotionApprovalOperator(
        task_id="approve", model_name="m", version="2", response_timeout=timedelta(hours=1), params={"x": 1}
    )
    assert isinstance(op, HITLOperator)
    assert (op.options, op.multiple, op.defaults) == ([APPROVE, REJECT], False, None)  # no default: a timeout fails
    assert list(op.serialized_params) == ["reason"]  # the DAG's params stay out of the form
    assert op.response_timeout == timedelta(hours=1)
    assert {"model_name", "version", "subject", "body"} <= set(op.template_fields)
    assert op.subject == "Promote m version 2 to champion?"
    with pytest.raises(ValueError, match="sets 'options' itself"):
        PromotionApprovalOperator(task_id="a", model_name="m", version="2", options=["OK"])


def test_the_answer_is_read_from_airflows_response() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    approve = {"chosen_options": [APPROVE], "params_input": {"reason": " fine "}, "responded_at": at,
               "responded_by_user": {"id": "7", "name": "ann"}}  # fmt: skip
    assert _apply(approve)._answer() == (True, "ann", "fine")
    reject = {"chosen_options": [REJECT], "params_input": {}, "responded_by_user": {"id": "7", "name": ""}}
    assert _apply(reject)._answer() == (False, "7", "")
    for bad in (None, {"chosen_options": []}, {"chosen_options": [APPROVE, REJECT]}, {"chosen_options": ["OK"]}):
        with pytest.raises(AirflowFailException, match="Not an answer of the approval task"):
            _apply(bad)._answer()


def test_only_a_new_champion_emits_the_champion_asset() -> None:
    asset = champion_asset("m")
    op = ApplyPromotionOperator(task_id="apply", model_name="m", version="2", review={}, champion_asset=asset)
    assert [o.name for o in op.outlets] == ["m_model_champion__on_new_champion"]  # an AssetAlias, not the Asset


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("True", True), ("false", False), ("", False)])
def test_require_approval_reads_templated_booleans(value: bool | str, expected: bool) -> None:
    assert _flag("require_approval", value) is expected


def test_require_approval_refuses_anything_else() -> None:
    with pytest.raises(AirflowFailException, match="require_approval must be true or false, not 'maybe'"):
        _flag("require_approval", "maybe")


def test_the_person_sees_scores_policy_lineage_and_links() -> None:
    record = {"model_name": "m", "version": "2", "champion_version": "1", "metric": "roc_auc", "promote": False,
              "awaiting_approval": True, "challenger_score": 0.91, "champion_score": 0.8, "reason": "beats it",
              "policy": {"metric": "roc_auc", "min_improvement": 0.01}, "holdout_rows": 400,
              "holdout_uri": "s3://b/h.parquet", "holdout_digest": "abc"}  # fmt: skip
    body = approval_brief(record, {Tag.DATASET_URI: "s3://b/train.parquet"}, "http://ml/#/models/m/versions/2",
                          "http://ml/#/models/m/versions/1")  # type: ignore[arg-type]  # fmt: skip
    for shown in ("0.9100", "0.8000", "beats it", '"min_improvement": 0.01', "400 rows", "s3://b/train.parquet",
                  "[2](http://ml/#/models/m/versions/2)", "[1](http://ml/#/models/m/versions/1)"):  # fmt: skip
        assert shown in body
    assert pending_record({Tag.PROMOTION: json.dumps(record)}) == record
    assert pending_record({Tag.PROMOTION: json.dumps({**record, "awaiting_approval": False})}) is None
    assert pending_record({}) is None
    reviewed = reviewed_record(record, True, "ann", "ok")  # type: ignore[arg-type]
    assert (reviewed["promote"], reviewed["awaiting_approval"], reviewed["reviewed_by"]) == (True, False, "ann")
