"""The inputs of a model: from its training run's params, checked against its signature."""

from __future__ import annotations

import pytest
from mlflow.types import ColSpec, DataType, Schema

from airflow_mlops_provider.contracts import ProblemType, RunParam
from airflow_mlops_provider.core.inference.model import ModelInputs

PARAMS = {
    RunParam.NUMERIC_FEATURES: "tenure_months,monthly_charges",
    RunParam.CATEGORICAL_FEATURES: "plan",
    RunParam.PROBLEM_TYPE: ProblemType.BINARY,
}
SIGNATURE = Schema(
    [
        ColSpec(DataType.long, "tenure_months"),
        ColSpec(DataType.double, "monthly_charges"),
        ColSpec(DataType.string, "plan"),
    ]
)


def test_inputs_come_from_the_run_and_their_types_from_the_signature() -> None:
    inputs = ModelInputs.from_model(PARAMS, SIGNATURE)

    assert inputs == ModelInputs(
        ("tenure_months", "monthly_charges", "plan"),
        frozenset({"tenure_months"}),
        frozenset({"monthly_charges"}),
        ProblemType.BINARY,
    )
    assert ModelInputs.from_model(PARAMS, None).features == ("tenure_months", "monthly_charges", "plan")
    assert ModelInputs.from_model({}, SIGNATURE).problem_type is None


def test_a_model_without_named_inputs_or_with_other_inputs_is_refused() -> None:
    with pytest.raises(ValueError, match="names no input features"):
        ModelInputs.from_model({}, None)
    with pytest.raises(ValueError, match="are not the model signature's inputs"):
        ModelInputs.from_model({**PARAMS, RunParam.CATEGORICAL_FEATURES: "region"}, SIGNATURE)
