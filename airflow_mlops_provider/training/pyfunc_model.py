"""The logged model: a pyfunc that takes raw features (strings included) and wraps the torch network.

``mlflow.pytorch``'s own pyfunc casts input frames to float32, so it cannot take raw categories. This
pyfunc holds the :class:`FeatureEncoder` as JSON and the network saved with ``mlflow.pytorch`` (pickle
format) as the artifact ``torch_model``. The classes of this module, ``model`` and ``encoding`` are
pickled by value, so loading the model needs only torch, pandas, numpy, cloudpickle and mlflow, not
this provider.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types import ColSpec, DataType, Schema, TensorSpec
from pandas.api.types import is_integer_dtype

from airflow_mlops_provider.training import encoding
from airflow_mlops_provider.training import model as model_module
from airflow_mlops_provider.training.encoding import FeatureEncoder
from airflow_mlops_provider.training.model import TabularMLP, predict_raw

MODEL_NAME = "model"
_REQUIREMENTS = ("torch", "mlflow", "pandas", "numpy", "cloudpickle")
_EXAMPLE_ROWS = 5


class TabularPyfuncModel(PythonModel):
    """Encodes a raw feature frame and returns one prediction per row: P(class 1), or the value."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the encoder and the network from the model's artifacts.

        :param context: gives the local paths of the artifacts ``encoder`` and ``torch_model``.
        """
        self.encoder = FeatureEncoder.from_json(Path(context.artifacts["encoder"]).read_text())
        self.network = mlflow.pytorch.load_model(context.artifacts["torch_model"], map_location="cpu")

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        """Predict for raw features; unseen or missing categories use the out-of-vocabulary embedding.

        :param context: unused.
        :param model_input: raw feature frame.
        :param params: unused.
        """
        return predict_frame(self.network, self.encoder, model_input)


def predict_frame(network: TabularMLP, encoder: FeatureEncoder, df: pd.DataFrame) -> np.ndarray:
    """Encode ``df``, run ``network`` on CPU and decode: the 1-D predictions of the logged model.

    :param network: the trained network.
    :param encoder: its fitted encoder.
    :param df: raw feature frame.
    """
    return encoder.decode(predict_raw(network, *encoder.encode(df)))


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (local version suffixes such as ``+cpu`` dropped)."""
    return [f"{name}=={version(name).split('+')[0]}" for name in _REQUIREMENTS]


def input_example(df: pd.DataFrame, encoder: FeatureEncoder) -> pd.DataFrame:
    """A few raw feature rows with the training dtypes (categories as strings).

    :param df: rows to take the example from.
    :param encoder: gives the feature columns.
    """
    example = df[[*encoder.numeric, *encoder.categorical]].head(_EXAMPLE_ROWS).reset_index(drop=True)
    return example.astype(dict.fromkeys(encoder.categorical, str))


def model_signature(rows: pd.DataFrame, encoder: FeatureEncoder) -> ModelSignature:
    """The model's signature, spelled out (no inference, no inference warnings): each numeric feature as
    its training dtype (integers as ``long``, so integer inputs are accepted as they were trained), each
    categorical one as a string, and one float64 prediction per row.

    :param rows: training rows, for the numeric dtypes.
    :param encoder: gives the feature columns.
    """
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(DataType.long if is_integer_dtype(rows[name]) else DataType.double, name) for name in encoder.numeric
    ]
    inputs += [ColSpec(DataType.string, name) for name in encoder.categorical]
    return ModelSignature(Schema(inputs), Schema([TensorSpec(np.dtype(np.float64), (-1,))]))


def log_pyfunc_model(network: TabularMLP, encoder: FeatureEncoder, rows: pd.DataFrame) -> ModelInfo:
    """Log the model under the name ``model`` into the active run, with pinned requirements and an explicit
    signature (MLflow infers neither); MLflow checks that it loads and predicts the input example.

    :param network: the trained network (moved to CPU).
    :param encoder: its fitted encoder.
    :param rows: raw rows to draw the input example from.
    """
    requirements = pip_requirements()
    with (
        tempfile.TemporaryDirectory() as tmp,
        _pickled_by_value(model_module, encoding, sys.modules[__name__]),
    ):
        torch_path = Path(tmp, "torch_model")
        mlflow.pytorch.save_model(
            network.cpu(), torch_path, serialization_format="pickle", pip_requirements=requirements
        )
        encoder_path = Path(tmp, "encoder.json")
        encoder_path.write_text(encoder.to_json())
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=TabularPyfuncModel(),
            artifacts={"torch_model": str(torch_path), "encoder": str(encoder_path)},
            pip_requirements=requirements,
            signature=model_signature(rows, encoder),
            input_example=input_example(rows, encoder),
        )


@contextmanager
def _pickled_by_value(*modules: ModuleType) -> Iterator[None]:
    """Make cloudpickle embed these modules' classes and functions instead of referencing them."""
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)
