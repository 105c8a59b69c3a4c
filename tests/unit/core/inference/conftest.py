"""A real (untrained, seeded) torch network behind the logged model's own predict code, for scoring tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.contracts import ProblemType
from airflow_mlops_provider.core.inference.model import ModelInputs
from demo import data as demo_data

FEATURES = (*demo_data.FEATURES_NUMERIC, *demo_data.FEATURES_CATEGORICAL)


class NetworkModel:
    """What the pyfunc model does on ``predict``: encode, run the network, decode."""

    def __init__(self, rows: pd.DataFrame) -> None:
        import torch

        from airflow_mlops_provider.training.encoding import FeatureEncoder
        from airflow_mlops_provider.training.model import TabularMLP

        self.encoder = FeatureEncoder.fit(
            rows, ProblemType.BINARY, demo_data.FEATURES_NUMERIC, demo_data.FEATURES_CATEGORICAL, demo_data.TARGET
        )
        torch.manual_seed(0)
        self.network = TabularMLP(len(self.encoder.numeric), self.encoder.cardinalities, 4, [16])
        self.calls: list[int] = []

    def predict(self, data: pd.DataFrame) -> Any:
        from airflow_mlops_provider.training.pyfunc_model import predict_frame

        assert list(data.columns) == list(FEATURES)  # only the model's inputs, in its order
        self.calls.append(len(data))
        return predict_frame(self.network, self.encoder, data)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """200 churn rows: keys, event times, features, label."""
    return demo_data.generate_batch(200, "2026-01-01", seed=5)


@pytest.fixture(scope="module")
def model(rows: pd.DataFrame) -> NetworkModel:
    return NetworkModel(rows)


@pytest.fixture
def inputs() -> ModelInputs:
    """The inputs as the trained pyfunc's signature declares them."""
    integers = frozenset({"tenure_months", "support_calls"})
    return ModelInputs(FEATURES, integers, frozenset({"monthly_charges", "usage_gb"}), ProblemType.BINARY)


def expected(model: NetworkModel, frame: pd.DataFrame) -> np.ndarray:
    """The model's predictions on ``frame``, straight."""
    return np.asarray(model.predict(frame[list(FEATURES)]), dtype=np.float64)
