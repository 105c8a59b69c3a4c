"""Temporal train/validation/holdout splits: the oldest rows train, the newest are held out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from airflow_mlops_provider.contracts import Split


def temporal_split(
    df: pd.DataFrame, by: str, validation: float = 0.15, holdout: float = 0.15, column: str = Split.COLUMN
) -> pd.DataFrame:
    """Return a copy of ``df`` with a ``column`` of ``train``, ``validation`` or ``holdout`` by time.

    :param df: the frame; its row order is kept.
    :param by: the column to order by (stable, so ties keep their order).
    :param validation: fraction of rows for validation.
    :param holdout: fraction of rows for the holdout (the newest).
    :param column: the name of the split column.
    """
    if validation < 0 or holdout < 0 or validation + holdout >= 1:
        raise ValueError(f"need validation, holdout >= 0 and sum < 1, got {validation}, {holdout}")
    if by not in df.columns:
        raise ValueError(f"column {by!r} not in frame")
    n = len(df)
    n_holdout = round(n * holdout)
    n_train = n - n_holdout - round(n * validation)
    position = np.empty(n, dtype=np.int64)
    position[np.argsort(df[by].to_numpy(), kind="stable")] = np.arange(n)
    split = np.where(
        position < n_train, Split.TRAIN, np.where(position < n - n_holdout, Split.VALIDATION, Split.HOLDOUT)
    )
    return df.assign(**{column: split})
