"""The DAGs of tests/integration/test_approval_scheduler.py (copied into a temporary DAGs folder).

``approval_test``: register a crafted model's run, promote it with ``require_approval`` (a DAG param), ask
for approval, apply the answer. ``approval_timeout``: the same with a 20 s response timeout.
``champion_consumer``: scheduled on the champion Asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

from airflow_mlops_provider.contracts import champion_asset
from airflow_mlops_provider.operators.approval import ApplyPromotionOperator, PromotionApprovalOperator
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator

MODEL = "approval_model"
CHAMPION_MODEL = champion_asset(MODEL)

for dag_id, timeout in (("approval_test", timedelta(minutes=15)), ("approval_timeout", timedelta(seconds=20))):
    with DAG(
        dag_id,
        schedule=None,
        max_active_runs=4,
        params={
            "mlflow_run_id": Param("", type="string"),
            "holdout": Param("", type="string"),
            "require_approval": Param(True, type="boolean"),
        },
    ):
        register = RegisterModelOperator(
            task_id="register_model", model_name=MODEL, mlflow_run_id="{{ params.mlflow_run_id }}"
        )
        promote = PromoteModelOperator(
            task_id="promote_model",
            model_name=MODEL,
            version=register.output["version"],
            holdout_uri="{{ params.holdout }}",
            target="y",
            require_approval="{{ params.require_approval }}",
            champion_asset=CHAMPION_MODEL,
            lease_wait=300,
        )
        approve = PromotionApprovalOperator(
            task_id="approve_promotion", model_name=MODEL, version=register.output["version"], response_timeout=timeout
        )
        promote >> approve
        ApplyPromotionOperator(
            task_id="apply_promotion",
            model_name=MODEL,
            version=register.output["version"],
            review=approve.output,
            champion_asset=CHAMPION_MODEL,
        )

# What batch inference is to the example DAGs: a DAG scheduled on the champion Asset, so that the Asset is an
# active one whose events the API lists (it stays paused: the test reads the events, not its runs).
with DAG("champion_consumer", schedule=CHAMPION_MODEL):
    EmptyOperator(task_id="consume")
