"""Score a logged model on a labelled holdout frame (Airflow-free)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from airflow_mlops_provider.core.models.metrics import compute_metrics


def holdout_frame(df: pd.DataFrame, target: str, split_column: str | None, split_value: str) -> pd.DataFrame:
    """The labelled holdout rows of ``df``: those whose ``split_column`` equals ``split_value``.

    :param df: the dataset.
    :param target: the label column; rows must all have one.
    :param split_column: the split column, or ``None`` to use every row.
    :param split_value: the value that marks holdout rows.
    :raises ValueError: the target is missing or has NaNs, or no holdout row is left.
    """
    if target not in df.columns:
        raise ValueError(f"holdout data has no target column {target!r}; columns: {sorted(df.columns)}")
    if split_column is not None and split_column in df.columns:
        df = df[df[split_column] == split_value]
    if df.empty:
        raise ValueError(f"holdout data has no rows (split {split_column}={split_value!r})")
    missing = int(df[target].isna().sum())
    if missing:
        raise ValueError(f"holdout data has {missing} rows without a {target!r} label")
    return df.reset_index(drop=True)


def score_model(model_uri: str, holdout: pd.DataFrame, target: str, problem_type: str) -> dict[str, float]:
    """Load ``model_uri`` with pyfunc and compute the metrics of ``problem_type`` on ``holdout``.

    :param model_uri: any MLflow model URI, e.g. ``models:/churn/3``.
    :param holdout: labelled rows with the model's raw input features.
    :param target: the label column.
    :param problem_type: ``binary`` or ``regression``.
    """
    model = mlflow.pyfunc.load_model(model_uri)
    features = holdout.drop(columns=[target])
    names = model.metadata.get_input_schema().input_names() if model.metadata.get_input_schema() else None
    if names:
        missing = sorted(set(names) - set(features.columns))
        if missing:
            raise ValueError(f"holdout data lacks the model's input columns {missing}")
        features = features[names]
    predictions = np.asarray(model.predict(features), dtype=np.float64).ravel()
    return compute_metrics(problem_type, holdout[target].to_numpy(), predictions)
