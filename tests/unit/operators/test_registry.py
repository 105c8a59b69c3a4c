"""The registry operators without a server: their arguments, connections, links and promotion policy.

What they do against MLflow is in tests/integration/test_training_and_registry.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider.contracts import ProblemType, RunParam, Tag
from airflow_mlops_provider.core.io.splits import SplitPolicy
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


def test_promote_defaults_to_a_binary_problem() -> None:
    op = _promote()
    assert (op.problem_type, op.metric, op.fail_on_reject) == (ProblemType.BINARY, "roc_auc", False)
    assert not hasattr(op, "split_column")  # the holdout rows come from the run's split policy


class _Client:
    """The two registry reads the holdout definition needs: a version's run, and that run."""

    def __init__(self, run_id: str | None, params: dict[str, str], tags: dict[str, str]) -> None:
        self.run_id, self.params, self.tags = run_id, params, tags

    def get_model_version(self, name: str, version: str) -> SimpleNamespace:
        return SimpleNamespace(run_id=self.run_id)

    def get_run(self, run_id: str) -> SimpleNamespace:
        assert run_id == self.run_id
        return SimpleNamespace(data=SimpleNamespace(params=self.params, tags=self.tags))


def test_the_holdout_comes_from_the_runs_recorded_policy_and_digest() -> None:
    policy = SplitPolicy.random_by(seed=3, stratify=True)
    client = _Client("r1", {RunParam.SPLIT_POLICY: policy.to_json()}, {Tag.HOLDOUT_DIGEST: "abc"})
    assert _promote()._trainers_holdout(client, "2") == (policy, "abc", "r1")  # type: ignore[arg-type]


def test_runs_without_a_policy_fall_back_to_their_split_column() -> None:
    legacy = _Client("r1", {RunParam.SPLIT_COLUMN: "fold"}, {})
    assert _promote()._trainers_holdout(legacy, "2") == (SplitPolicy.existing("fold"), None, "r1")  # type: ignore[arg-type]
    runless = _Client(None, {}, {})
    assert _promote()._trainers_holdout(runless, "2") == (SplitPolicy.existing(), None, None)  # type: ignore[arg-type]


def test_an_unusable_recorded_policy_fails_without_retry() -> None:
    client = _Client("r1", {RunParam.SPLIT_POLICY: '{"kind": "kfold"}'}, {Tag.HOLDOUT_DIGEST: "abc"})
    with pytest.raises(AirflowFailException, match="Run r1 records an unusable split policy: split kind must be"):
        _promote()._trainers_holdout(client, "2")  # type: ignore[arg-type]


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


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"min_value": "nan"},
            r"Bad promotion policy for 'm': min_value must be a finite roc_auc in \[0.0, 1.0\], not nan",
        ),
        ({"min_improvement": "nan"}, "min_improvement must be a finite number >= 0, not nan"),
        ({"min_improvement": "a lot"}, "min_improvement must be a number, not 'a lot'"),
        ({"metric": "rmse"}, "metric 'rmse' does not apply to problem_type 'binary'"),
        ({"direction": "up"}, "direction must be 'maximize' or 'minimize', not 'up'"),
    ],
)
def test_a_bad_policy_fails_without_retry(settings: dict[str, str], message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        _promote(**settings)._policy()


def test_the_lease_holder_is_the_task_instance_with_its_map_index() -> None:
    from airflow_mlops_provider.operators.registry import _holder

    ti = SimpleNamespace(dag_id="ct", run_id="manual__1", task_id="promote", try_number=2, map_index=-1)
    assert _holder({"ti": ti}) == ("ct/manual__1/promote", 2)  # type: ignore[arg-type]
    mapped = SimpleNamespace(dag_id="ct", run_id="manual__1", task_id="promote", try_number=1, map_index=3)
    assert _holder({"ti": mapped}) == ("ct/manual__1/promote[3]", 1)  # type: ignore[arg-type]
