"""One batch inference run, chunk by chunk: read rows, add features, apply the policy, score, append.

Memory is bounded by the chunk (rows, features, predictions of ``chunk_rows`` rows) plus one float64 per
scored row, kept for the statistics. Scoring is row-wise, so the predictions do not depend on the chunking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from airflow_mlops_provider.core.inference.model import ModelInputs
from airflow_mlops_provider.core.inference.policy import UnscorablePolicy
from airflow_mlops_provider.core.inference.predictions import PredictionsWriter, predictions_frame
from airflow_mlops_provider.core.inference.scoring import EXAMPLES, Predictor, score_chunk

log = logging.getLogger(__name__)

#: Adds the feature columns to a chunk of entity rows (e.g. from the online store); ``None``: the rows hold them.
FeatureLookup = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class ScoringTotals:
    """What a run scored.

    :param rows: input rows (in the window).
    :param scored: rows written with a prediction (filled ones included).
    :param unscorable: rows that missed a feature (dropped or filled).
    :param predictions: every written prediction, in file order.
    :param examples: up to :data:`~airflow_mlops_provider.core.inference.scoring.EXAMPLES` unscorable rows.
    :param chunks: chunks scored.
    """

    rows: int
    scored: int
    unscorable: int
    predictions: np.ndarray
    examples: tuple[str, ...]
    chunks: int


def score_batches(
    chunks: Iterable[pd.DataFrame],
    model: Predictor,
    inputs: ModelInputs,
    policy: UnscorablePolicy,
    keys: Sequence[str],
    timestamp: str,
    writer: PredictionsWriter,
    version: str,
    scored_at: str,
    lookup: FeatureLookup | None = None,
) -> ScoringTotals:
    """Score every chunk and append its predictions to ``writer`` (not committed); the ``drop`` cap is
    checked over all rows at the end, so a refused run has written nothing to the destination.

    :param chunks: the rows to score (keys, UTC event times, and features unless ``lookup`` adds them).
    :param model: the pyfunc model.
    :param inputs: its inputs.
    :param policy: what to do with unscorable rows.
    :param keys: the entity key columns.
    :param timestamp: the event time column.
    :param writer: where the predictions go.
    :param version: the model version, written on each row.
    :param scored_at: the run's scoring time, written on each row.
    :param lookup: adds the features to a chunk of entity rows.
    :raises UnscorableError: the policy refuses the unscorable rows.
    """
    rows = scored = unscorable = chunks_done = 0
    predictions: list[np.ndarray] = []
    examples: list[str] = []
    for chunk in chunks:
        if chunk.empty:
            continue
        frame = lookup(chunk) if lookup is not None else chunk
        done = score_chunk(model, frame, inputs, policy, keys)
        writer.write(predictions_frame(done.rows, keys, timestamp, done.predictions, version, scored_at))
        rows += len(chunk)
        scored += len(done.rows)
        unscorable += done.unscorable
        predictions.append(done.predictions)
        examples += done.examples[: EXAMPLES - len(examples)]
        chunks_done += 1
        log.debug("chunk %d: %d rows, %d unscorable", chunks_done, len(chunk), done.unscorable)
    policy.enforce(unscorable, rows)
    values = np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.float64)
    return ScoringTotals(rows, scored, unscorable, values, tuple(examples), chunks_done)
