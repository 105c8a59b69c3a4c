"""Prediction drift: the champion's predictions on current data against its predictions on its own holdout rows.

The reference is the model's output on the rows the trainer held out (the same rows promotion scored it
on, digest checked); the current values are the ``prediction`` column of its batch-inference files in the
check's window, for that version only. The column is compared like a numeric feature, with the check's
:class:`~airflow_mlops_provider.core.drift.spec.DriftConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from airflow_mlops_provider.contracts import PredictionColumn, Split
from airflow_mlops_provider.core.drift.check import DigestMismatchError, ReferenceSet, load_window
from airflow_mlops_provider.core.drift.compute import ColumnDrift, compute_drift
from airflow_mlops_provider.core.drift.spec import DriftConfig, DriftWindow, NothingToCheckError
from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset

if TYPE_CHECKING:
    from airflow_mlops_provider.core.io.storage import ObjectStore


def current_predictions(uri: str, store: ObjectStore, window: DriftWindow, version: str | None) -> pd.DataFrame:
    """The ``prediction`` column of the predictions in ``window`` made by ``version``.

    :param uri: a predictions file or a ``/``-terminated prefix.
    :param store: the store to read through.
    :param window: the rows to keep (by event time).
    :param version: the model version whose predictions count; ``None``: all.
    :raises NothingToCheckError: no predictions of ``version`` in the window.
    :raises FileNotFoundError: nothing at ``uri``.
    """
    frame = load_window(uri, store, window.time_column, window.start or None, window.end or None, window.lookback)
    if PredictionColumn.PREDICTION not in frame.columns:
        raise ValueError(f"{uri} has no {PredictionColumn.PREDICTION!r} column")
    if version is not None and PredictionColumn.MODEL_VERSION in frame.columns:
        frame = frame[frame[PredictionColumn.MODEL_VERSION].astype(str) == str(version)]
        if frame.empty:
            raise NothingToCheckError(f"no predictions of version {version} in {uri} in the window")
    return frame[[PredictionColumn.PREDICTION]].reset_index(drop=True)


def holdout_predictions(reference: ReferenceSet, store: ObjectStore) -> pd.DataFrame:
    """The model version's predictions on the holdout rows of its training set.

    :param reference: the version's training set (``check.aliased_training_set``).
    :param store: the store to read through.
    :raises ValueError: no model version or target to score with, or holdout rows that are not the trainer's.
    """
    from airflow_mlops_provider.core.io.splits import SplitPolicy
    from airflow_mlops_provider.core.models.evaluation import check_holdout, holdout_rows, predict

    if not (reference.model_name and reference.model_version and reference.target):
        raise ValueError("prediction drift needs the champion version and its run's target: set model_name")
    frame = read_dataset(reference.uri, store=store)
    if reference.digest is not None and (actual := dataset_digest(frame)) != reference.digest:
        raise DigestMismatchError(f"{reference.uri} has digest {actual}, but {reference.digest} was recorded")
    policy = reference.split or SplitPolicy.existing(reference.split_column or Split.COLUMN)
    rows = holdout_rows(frame, policy, reference.target)
    if reference.holdout_digest is not None:
        check_holdout(rows, reference.holdout_digest, reference.uri)
    model_uri = f"models:/{reference.model_name}/{reference.model_version}"
    return pd.DataFrame({PredictionColumn.PREDICTION: predict(model_uri, rows.drop(columns=[reference.target]))})


def prediction_drift(reference_predictions: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> ColumnDrift:
    """The verdict on the ``prediction`` column.

    :param reference_predictions: :func:`holdout_predictions`.
    :param current: :func:`current_predictions`.
    :param config: tests and thresholds (a per-column setting for ``prediction`` applies).
    """
    (verdict,) = compute_drift(reference_predictions, current, [PredictionColumn.PREDICTION], config).columns
    return verdict
