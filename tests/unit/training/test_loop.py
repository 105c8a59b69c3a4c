"""The training loop without MLflow: fail-fast on divergence, early stopping, regression, determinism."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from airflow_mlops_provider.training.data import Splits, split_dataset
from airflow_mlops_provider.training.encoding import FeatureEncoder
from airflow_mlops_provider.training.errors import TrainingDivergedError
from airflow_mlops_provider.training.loop import evaluate, plan_device, train_model
from airflow_mlops_provider.training.options import TrainConfig
from airflow_mlops_provider.training.pyfunc_model import (
    input_example,
    model_signature,
    pip_requirements,
    predict_frame,
)
from demo.data import (
    FEATURES_CATEGORICAL,
    FEATURES_NUMERIC,
    TARGET,
    assign_splits,
    generate_batch,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return assign_splits(generate_batch(1500, "2024-01-01", days=5, seed=2))


def _fit(frame: pd.DataFrame, **overrides: object) -> tuple[TrainConfig, FeatureEncoder, Splits]:
    fields: dict[str, object] = {
        "data_uri": "d.parquet",
        "target": TARGET,
        "problem_type": "binary",
        "numeric_features": tuple(FEATURES_NUMERIC),
        "categorical_features": tuple(FEATURES_CATEGORICAL),
        "epochs": 3,
        "learning_rate": 0.01,
        "device": "cpu",
    }
    config = TrainConfig(**(fields | overrides))  # type: ignore[arg-type]
    splits = split_dataset(frame, config)
    encoder = FeatureEncoder.fit(
        splits.train,
        config.problem_type,
        list(config.numeric_features),
        list(config.categorical_features),
        config.target,
    )
    return config, encoder, splits


def test_binary_training_reports_each_epoch_and_is_deterministic(frame: pd.DataFrame) -> None:
    config, encoder, splits = _fit(frame)
    seen: list[tuple[int, dict[str, float]]] = []
    result = train_model(config, encoder, splits, on_epoch=lambda e, m: seen.append((e, m)))
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert set(seen[0][1]) == {"train_loss", "val_loss", "val_roc_auc", "val_accuracy", "val_log_loss"}
    assert 1 <= result.best_epoch <= result.epochs_run == 3
    again = train_model(config, encoder, splits, on_epoch=lambda e, m: None)
    assert evaluate(again.model, encoder, splits.validation, TARGET) == evaluate(
        result.model, encoder, splits.validation, TARGET
    )


def test_non_finite_loss_fails_fast_naming_epoch_and_batch(frame: pd.DataFrame) -> None:
    config, encoder, splits = _fit(frame, learning_rate=1e30)
    with pytest.raises(TrainingDivergedError, match=r"at epoch 1, batch 2"):
        train_model(config, encoder, splits, on_epoch=lambda e, m: None)


def test_early_stopping_keeps_the_best_epoch(frame: pd.DataFrame) -> None:
    # updates of 1e-30 vanish in float32: the validation loss never improves after epoch 1
    config, encoder, splits = _fit(frame, learning_rate=1e-30, epochs=10, patience=2)
    result = train_model(config, encoder, splits, on_epoch=lambda e, m: None)
    assert (result.best_epoch, result.epochs_run) == (1, 3)


def test_regression_predicts_on_the_target_scale(frame: pd.DataFrame) -> None:
    config, encoder, splits = _fit(
        frame, problem_type="regression", target="monthly_charges", numeric_features=("tenure_months",), epochs=4
    )
    result = train_model(config, encoder, splits, on_epoch=lambda e, m: None)
    _, metrics = evaluate(result.model, encoder, splits.validation, "monthly_charges")
    assert metrics["r2"] > 0.5  # the plan explains most of the price
    example = input_example(splits.train, encoder)
    assert list(example.columns) == ["tenure_months", "plan", "region"]
    predictions = predict_frame(result.model, encoder, example)
    assert predictions.shape == (5,) and predictions.mean() > 20


def test_pip_requirements_are_pinned_without_local_versions() -> None:
    requirements = pip_requirements()
    assert {r.split("==")[0] for r in requirements} == {"torch", "mlflow", "pandas", "numpy", "cloudpickle"}
    assert all("==" in r and "+" not in r for r in requirements)


GIB = 2**30


@pytest.mark.parametrize(
    ("device", "data_bytes", "free_bytes", "bf16", "expected"),
    [
        ("cpu", GIB, 0, True, (False, False, False, False)),  # no autocast, no pinning, no copies ahead
        ("cuda", GIB, 8 * GIB, True, (True, True, False, False)),  # fits a quarter: on the device once
        ("cuda", 3 * GIB, 8 * GIB, True, (True, False, True, True)),  # too big: pinned host, async copies
        ("cuda", GIB, 8 * GIB, False, (False, True, False, False)),  # no bf16 on this GPU: no autocast
    ],
)
def test_the_device_plan(
    device: str, data_bytes: int, free_bytes: int, bf16: bool, expected: tuple[bool, bool, bool, bool]
) -> None:
    plan = plan_device(torch.device(device), data_bytes, free_bytes, bf16)
    assert plan.device == torch.device(device)
    assert (plan.bf16_autocast, plan.data_on_device, plan.pin_memory, plan.non_blocking) == expected


def test_throughput_is_reported_and_no_gpu_memory_on_cpu(frame: pd.DataFrame) -> None:
    config, encoder, splits = _fit(frame, epochs=2)
    result = train_model(config, encoder, splits, on_epoch=lambda e, m: None)
    assert result.samples_per_second == pytest.approx(len(splits.train) * 2 / result.seconds)
    assert result.gpu_peak_memory_mb is None


def test_the_model_signature_is_spelled_out_from_the_training_dtypes(frame: pd.DataFrame) -> None:
    _, encoder, splits = _fit(frame)
    signature = model_signature(splits.train, encoder)
    types = {spec.name: spec.type.name for spec in signature.inputs.inputs}
    assert types == {
        "tenure_months": "long",
        "monthly_charges": "double",
        "support_calls": "long",
        "usage_gb": "double",
        "plan": "string",
        "region": "string",
    }
    assert signature.outputs.to_dict() == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": (-1,)}}]
