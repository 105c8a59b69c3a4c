"""The registry operators without a server: their arguments, connections, links and promotion policy.

What they do against MLflow is in tests/integration/test_training_and_registry.py.
"""

from __future__ import annotations

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider.contracts import ProblemType
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.operators.base import MlopsBaseOperator
from airflow_mlops_provider.operators.registry import (
    PromoteModelOperator,
    RegisterModelOperator,
    RollbackModelOperator,
)
from airflow_mlops_provider.operators.training import GPUTrainingOperator


def _promote(**kwargs: object) -> PromoteModelOperator:
    return PromoteModelOperator(
        task_id="promote",
        model_name="m",
        version="2",
        holdout_uri="h.parquet",
        target="y",
        **kwargs,  # type: ignore[arg-type]
    )


def test_registry_operators_share_the_base_and_link_the_model_version() -> None:
    operators = [
        RegisterModelOperator(task_id="register", model_name="m", mlflow_run_id="abc"),
        _promote(),
        RollbackModelOperator(task_id="rollback", model_name="m"),
    ]
    for op in operators:
        assert isinstance(op, MlopsBaseOperator) and op.multiple_outputs
        assert [type(link) for link in op.operator_extra_links] == [MlflowModelVersionLink]
        assert (op.mlflow_conn_id, op.storage_conn_id) == ("mlflow_default", "mlops_s3_default")
        assert "model_name" in op.template_fields


def test_register_takes_the_training_tasks_mlflow_run_id() -> None:
    with DAG("registry_wiring", schedule=None):
        train = GPUTrainingOperator(task_id="train", dataset_uri="d.parquet", target="y", namespace="ml")
        register = RegisterModelOperator(
            task_id="register", model_name="m", mlflow_run_id=train.output["mlflow_run_id"]
        )
    assert "mlflow_run_id" in register.template_fields
    assert register.upstream_task_ids == {"train"}


def test_promote_defaults_to_a_binary_problem_on_the_holdout_split() -> None:
    op = _promote()
    assert (op.problem_type, op.split_column, op.split_value) == (ProblemType.BINARY, "split", "holdout")


def test_policy_follows_the_metrics_direction_and_reads_templated_numbers() -> None:
    policy = _promote(metric="rmse", problem_type="regression", min_value="None", min_improvement="0.5")._policy()
    assert (policy.metric, policy.direction, policy.min_value, policy.min_improvement) == (
        "rmse",
        "minimize",
        None,
        0.5,
    )
    assert _promote(min_value="0.7")._policy().min_value == 0.7
    assert _promote(metric="roc_auc", direction="minimize")._policy().direction == "minimize"


def test_unknown_metric_fails_without_retry() -> None:
    with pytest.raises(AirflowFailException, match=r"Unknown metric 'f1'; choose one of \['accuracy'"):
        _promote(metric="f1")._policy()
