"""Scoring a chunk of rows: which rows cannot be scored, what the policy does with them, and the predictions.

A row is unscorable when any of the model's features is missing (null or NaN): an entity the online store
does not know comes back with every feature null. The
:class:`~airflow_mlops_provider.core.inference.policy.UnscorablePolicy` says what happens to such rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from airflow_mlops_provider.contracts import Unscorable
from airflow_mlops_provider.core.inference.policy import UnscorableError, UnscorablePolicy

if TYPE_CHECKING:
    from airflow_mlops_provider.core.inference.model import ModelInputs

#: Unscorable rows a message names at most.
EXAMPLES = 3
#: Every call of the model gets a multiple of this many rows (the last row repeated, its copies' predictions
#: discarded). CPU matrix kernels compute rows in blocks (of 4 with this machine's torch); the rows of a partial
#: block take another code path whose float32 rounding differs (by about 1e-8), so without padding a row's
#: prediction would depend on how many rows share its call, and chunked scoring would not equal unchunked.
ROW_BLOCK = 16


class Predictor(Protocol):
    """What scores a feature frame: a pyfunc model."""

    def predict(self, data: pd.DataFrame) -> Any:
        """One prediction per row of ``data``."""


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk after the policy: the rows kept, their predictions, and the unscorable ones.

    :param rows: the kept rows (filled under ``fill``), in order; their index is the input's.
    :param predictions: one float64 per kept row.
    :param unscorable: unscorable rows in the chunk (dropped under ``drop``, filled under ``fill``).
    :param examples: up to :data:`EXAMPLES` of them, by their key columns (``customer_id=7``).
    """

    rows: pd.DataFrame
    predictions: np.ndarray
    unscorable: int
    examples: tuple[str, ...] = ()


def unscorable_rows(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """A boolean mask of the rows missing a value of some feature.

    :param frame: rows with the feature columns.
    :param features: the model's features.
    :raises ValueError: a feature column is absent.
    """
    absent = [name for name in features if name not in frame.columns]
    if absent:
        raise ValueError(f"the rows lack the model's feature columns {absent}; they have {sorted(map(str, frame))}")
    if not features:
        return np.zeros(len(frame), dtype=bool)
    # Column by column: no copy of the feature columns as one frame.
    return np.logical_or.reduce([_missing(frame[name]) for name in features])


def _missing(column: pd.Series) -> np.ndarray:
    """The column's null or NaN values, as a boolean mask.

    An object column of nothing but strings (a categorical feature, as served) is recognised by one pass of
    type checks, about 4x faster than ``isna``'s tests of each value for every kind of missing value.

    :param column: one feature column.
    """
    if column.dtype == object and pd.api.types.infer_dtype(column.to_numpy(), skipna=False) == "string":
        return np.zeros(len(column), dtype=bool)
    return column.isna().to_numpy()


def model_frame(frame: pd.DataFrame, inputs: ModelInputs) -> pd.DataFrame:
    """The model's input columns of ``frame``, typed as its signature takes them: whole numbers for an
    integer input (a feature served as float because the store had a null), floats for a floating one (a
    file that stores 12 as 12), as MLflow's schema enforcement refuses either conversion.

    :param frame: rows with every feature, none missing.
    :param inputs: the model's inputs.
    :raises ValueError: a value of an integer input is not a whole number.
    """
    # The columns themselves, not a copy (``frame[list]`` copies them); the model's schema check copies anyway.
    features = pd.DataFrame({name: frame[name] for name in inputs.features}, copy=False)
    casts: dict[str, str] = {}
    for name in inputs.features:
        dtype = features[name].dtype
        if name in inputs.floats and not pd.api.types.is_float_dtype(dtype):
            casts[name] = "float64"
        elif name in inputs.integers and not pd.api.types.is_integer_dtype(dtype):
            values = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(values) & (values == np.round(values))):
                raise ValueError(f"feature {name!r} must hold whole numbers (the model takes integers)")
            casts[name] = "int64"
    return features.astype(casts) if casts else features


def predict(model: Predictor, frame: pd.DataFrame, inputs: ModelInputs) -> np.ndarray:
    """The model's predictions for ``frame`` (rows with every feature), one float64 per row, each independent
    of the other rows of the call (see :data:`ROW_BLOCK`).

    :param model: the pyfunc model.
    :param frame: the rows.
    :param inputs: the model's inputs.
    :raises ValueError: the model did not return one prediction per row.
    """
    if frame.empty:
        return np.zeros(0, dtype=np.float64)
    features = model_frame(frame, inputs)
    padding = -len(features) % ROW_BLOCK
    if padding:
        features = pd.concat([features, features.iloc[[-1] * padding]], ignore_index=True)
    predictions = np.asarray(model.predict(features), dtype=np.float64)
    if predictions.ndim > 1:
        predictions = predictions.reshape(len(predictions), -1)
        if predictions.shape[1] != 1:
            raise ValueError(f"the model returned {predictions.shape[1]} values per row; batch scoring takes one")
        predictions = predictions[:, 0]
    if len(predictions) != len(features):
        raise ValueError(f"the model returned {len(predictions)} predictions for {len(features)} rows")
    return predictions[: len(frame)]


def score_chunk(
    model: Predictor, frame: pd.DataFrame, inputs: ModelInputs, policy: UnscorablePolicy, keys: Sequence[str]
) -> ScoredChunk:
    """Apply ``policy`` to the chunk's unscorable rows, and score the rest.

    :param model: the pyfunc model.
    :param frame: the chunk: key columns and features.
    :param inputs: the model's inputs.
    :param policy: what to do with unscorable rows (the ``drop`` cap is checked over the whole input, by
        the caller: :meth:`UnscorablePolicy.enforce`).
    :param keys: the columns that name a row in messages, e.g. the entity keys.
    :raises UnscorableError: under ``fail``, an unscorable row, naming up to :data:`EXAMPLES` of them.
    """
    bad = unscorable_rows(frame, inputs.features)
    count = int(bad.sum())
    examples = _examples(frame[bad], keys) if count else ()
    if count and policy.action == Unscorable.FAIL:
        raise UnscorableError(
            f"{count} of {len(frame)} rows of a chunk are unscorable (an unknown entity or a missing feature "
            f"value), e.g. {', '.join(examples)}; unscorable='fail' allows none (use 'drop' or 'fill')"
        )
    rows = frame  # no copy: rows are kept by position, and the predictions frame takes only the key columns
    if count and policy.action == Unscorable.DROP:
        rows = frame[~bad]
    elif count:
        rows = frame.fillna({name: policy.fill_values[name] for name in inputs.features})
    return ScoredChunk(rows, predict(model, rows, inputs), count, examples)


def _examples(rows: pd.DataFrame, keys: Sequence[str]) -> tuple[str, ...]:
    """The first unscorable rows, by their key columns."""
    head = rows.head(EXAMPLES)
    if not keys:
        return tuple(f"row {index}" for index in head.index)
    return tuple(", ".join(f"{key}={row[key]}" for key in keys) for _, row in head[list(keys)].iterrows())
