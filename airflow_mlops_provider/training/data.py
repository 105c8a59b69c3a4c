"""Load the training dataset, check it and split it by its policy, failing with messages that name the
offending columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from airflow_mlops_provider.contracts import ProblemType, Split
from airflow_mlops_provider.core.io.datasets import dataset_digest, dataset_format, read_dataset
from airflow_mlops_provider.core.io.splits import SplitError
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.training.errors import TrainerInputError
from airflow_mlops_provider.training.options import TrainConfig


@dataclass(frozen=True)
class Splits:
    """The dataset cut by its split policy; each part has the dataset's own columns.

    :param train: rows to fit on.
    :param validation: rows for per-epoch validation and early stopping.
    :param holdout: rows for the final unbiased metrics, if any.
    :param holdout_digest: ``dataset_digest`` of the holdout rows (of an empty frame when there are none):
        promotion scores only on rows with this digest.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame | None
    holdout_digest: str


def load_dataset(uri: str, store: ObjectStore | None = None) -> pd.DataFrame:
    """Read the dataset at ``uri``.

    :param uri: local path, ``file://`` or ``s3://`` URI.
    :param store: object store to read through.
    :raises TrainerInputError: nothing at ``uri``, no usable credentials for it, an unreadable or
        unsupported file, or a CSV whose last row is cut off.
    """
    try:
        df = read_dataset(uri, store)
    except FileNotFoundError as err:
        raise TrainerInputError(f"dataset not found: {uri}") from err
    except PermissionError as err:  # no or wrong S3 credentials: retrying cannot help
        raise TrainerInputError(f"cannot read dataset {uri}: {err}") from err
    except ValueError as err:
        raise TrainerInputError(str(err)) from err
    if dataset_format(uri).startswith("csv"):
        _check_last_row_complete(df, uri)
    return df


def _check_last_row_complete(df: pd.DataFrame, uri: str) -> None:
    """Refuse a CSV whose last row stops early: its trailing cells are empty while those columns are
    complete everywhere else, the mark of a file cut off in the middle of a line."""
    if len(df) < 2:
        return
    empty = df.iloc[-1].isna().to_numpy()
    trailing = len(empty) if empty.all() else int(np.argmin(empty[::-1]))  # empty cells at the row's end
    cut = list(df.columns[len(empty) - trailing :])
    if cut and not df[cut].iloc[:-1].isna().any().any():
        raise TrainerInputError(
            f"the last row of {uri} (row {len(df)}) ends before column {cut[0]!r}: {cut} are empty there and "
            "nowhere else; the file looks truncated (an interrupted upload or export?), write it again"
        )


def split_dataset(df: pd.DataFrame, config: TrainConfig) -> Splits:
    """Validate ``df`` against ``config`` and cut it into splits with ``config.split``
    (:meth:`~airflow_mlops_provider.core.io.splits.SplitPolicy.partition`, the split code promotion and
    drift checks apply too).

    :param df: the whole dataset.
    :param config: the trainer configuration (columns, problem type and split policy).
    :raises TrainerInputError: on any problem, naming the columns or values at fault.
    """
    if df.empty:
        raise TrainerInputError(f"dataset {config.data_uri} is empty")
    policy = config.split
    needed = [*config.features, config.target]
    needed += [config.split_column] if policy.reads_column else [c for c in [policy.time_column] if c]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TrainerInputError(f"dataset is missing columns {missing}; it has {sorted(map(str, df.columns))}")
    _check_features_have_values(df, config.features)
    _check_numeric_features(df, list(config.numeric_features))
    _check_target(df, config)

    try:
        parts = policy.partition(df, config.target)
    except SplitError as err:
        raise TrainerInputError(f"cannot split the dataset with {policy.to_json()}: {err}") from err
    for name in (Split.TRAIN, Split.VALIDATION):
        if parts[name].empty:
            source = f"split column {config.split_column!r}" if policy.reads_column else policy.to_json()
            raise TrainerInputError(f"{source} has no {name!r} rows (of {len(df)})")
    if config.problem_type == ProblemType.BINARY:
        for name, part in parts.items():
            if not part.empty and part[config.target].nunique() < 2:
                raise TrainerInputError(f"the {name!r} split has only one class of target {config.target!r}")
    holdout = parts[Split.HOLDOUT]
    return Splits(
        parts[Split.TRAIN], parts[Split.VALIDATION], None if holdout.empty else holdout, dataset_digest(holdout)
    )


def _check_features_have_values(df: pd.DataFrame, columns: list[str]) -> None:
    empty = [c for c in columns if df[c].isna().all()]
    if empty:
        raise TrainerInputError(f"features {empty} have no values at all (every row is missing); drop them")


def _check_numeric_features(df: pd.DataFrame, columns: list[str]) -> None:
    non_numeric = [c for c in columns if not is_numeric_dtype(df[c])]
    if non_numeric:
        dtypes = {c: str(df[c].dtype) for c in non_numeric}
        raise TrainerInputError(f"numeric features are not numeric: {dtypes}")
    values = df[columns].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        counts = {c: int(n) for c, n in zip(columns, bad.sum(axis=0), strict=True) if n}
        raise TrainerInputError(
            f"numeric features have NaN or infinite values (rows per column: {counts}); "
            "impute or drop them before training"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        stds = values.std(axis=0)
    overflow = {c: float(np.abs(values[:, i]).max()) for i, c in enumerate(columns) if not np.isfinite(stds[i])}
    if overflow:
        raise TrainerInputError(
            f"numeric features are too large to standardize (their standard deviation overflows float64; "
            f"largest absolute values: {overflow}); rescale them, e.g. change units or take a logarithm"
        )


def _check_target(df: pd.DataFrame, config: TrainConfig) -> None:
    target = df[config.target]
    if target.isna().any():
        raise TrainerInputError(f"target {config.target!r} has {int(target.isna().sum())} missing values")
    if not is_numeric_dtype(target):
        raise TrainerInputError(f"target {config.target!r} must be numeric, got dtype {target.dtype}")
    if config.problem_type == ProblemType.BINARY:
        values = set(pd.unique(target.astype(np.float64)))
        if not values <= {0.0, 1.0}:
            shown = sorted(float(v) for v in values)[:10]
            raise TrainerInputError(f"binary target {config.target!r} must hold only 0 and 1, found {shown}")
    elif not np.isfinite(target.to_numpy(dtype=np.float64)).all():
        raise TrainerInputError(f"regression target {config.target!r} has infinite values")
