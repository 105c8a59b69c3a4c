"""The holdout rows a model is judged on, and its score on them (Airflow-free)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.types import DataType

from airflow_mlops_provider.contracts import Split
from airflow_mlops_provider.core.io.datasets import dataset_digest
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.models.metrics import compute_metrics


class HoldoutMismatchError(ValueError):
    """The holdout rows differ from the rows the trainer held out (their digests differ)."""


def holdout_rows(df: pd.DataFrame, policy: SplitPolicy, target: str) -> pd.DataFrame:
    """The labelled holdout rows of ``df`` under ``policy``: the trainer's ``holdout`` split of the same data.

    :param df: the dataset the model was trained on (or the same rows, in the same order).
    :param policy: the split policy the trainer applied (its run's ``RunParam.SPLIT_POLICY``).
    :param target: the label column; the rows must all have one.
    :raises ValueError: no target column, a policy that cannot split ``df`` (``SplitError``), no holdout
        row, or holdout rows without a label.
    """
    if target not in df.columns:
        raise ValueError(f"holdout data has no target column {target!r}; columns: {sorted(map(str, df.columns))}")
    rows = policy.partition(df, target)[Split.HOLDOUT]
    if rows.empty:
        raise ValueError(f"holdout data has no {Split.HOLDOUT!r} rows under the split policy {policy.to_json()}")
    missing = int(rows[target].isna().sum())
    if missing:
        raise ValueError(f"holdout data has {missing} rows without a {target!r} label")
    return rows


def check_holdout(rows: pd.DataFrame, recorded_digest: str, source: str = "the holdout data") -> str:
    """Check that ``rows`` are the rows the trainer held out, by their digest; return the digest.

    :param rows: the holdout rows (:func:`holdout_rows`).
    :param recorded_digest: the trainer's digest of its holdout rows (its run's ``Tag.HOLDOUT_DIGEST``).
    :param source: what the rows were read from, for the message.
    :raises HoldoutMismatchError: the digests differ.
    """
    digest = dataset_digest(rows)
    if digest != recorded_digest:
        raise HoldoutMismatchError(
            f"the holdout rows of {source} differ from the rows the trainer held out: their digest is {digest}, "
            f"the trainer recorded {recorded_digest} ({len(rows)} rows here); the holdout data must be the dataset "
            "the model was trained on, unchanged"
        )
    return digest


def predict(model_uri: str, features: pd.DataFrame) -> np.ndarray:
    """``model_uri``'s pyfunc predictions on ``features``, as float64.

    Whole numbers where the model's signature says double (a file that stores 12 as 12) are widened, as
    MLflow's schema enforcement refuses int64 -> float64; columns the signature does not name are dropped.

    :param model_uri: any MLflow model URI, e.g. ``models:/churn/3``.
    :param features: rows with the model's raw input features.
    :raises ValueError: ``features`` lack some of the model's input columns.
    """
    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        types = schema.input_types_dict()
        missing = sorted(set(types) - set(features.columns))
        if missing:
            raise ValueError(f"the data lacks the model's input columns {missing}")
        floats = [name for name, kind in types.items() if kind in (DataType.double, DataType.float)]
        widen = [name for name in floats if pd.api.types.is_integer_dtype(features[name])]
        features = features[list(types)].astype(dict.fromkeys(widen, "float64"))
    return np.asarray(model.predict(features), dtype=np.float64).ravel()


def score_model(model_uri: str, holdout: pd.DataFrame, target: str, problem_type: str) -> dict[str, float]:
    """Load ``model_uri`` with pyfunc and compute the metrics of ``problem_type`` on ``holdout``.

    :param model_uri: any MLflow model URI, e.g. ``models:/churn/3``.
    :param holdout: labelled rows with the model's raw input features.
    :param target: the label column.
    :param problem_type: ``binary`` or ``regression``.
    :raises ValueError: the holdout lacks some of the model's input columns.
    """
    predictions = predict(model_uri, holdout.drop(columns=[target]))
    return compute_metrics(problem_type, holdout[target].to_numpy(), predictions)
