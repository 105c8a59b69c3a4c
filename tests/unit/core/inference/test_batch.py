"""A run over many chunks: the same file whatever the chunk size, and the drop cap over all rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.inference.batch import score_batches
from airflow_mlops_provider.core.inference.model import ModelInputs
from airflow_mlops_provider.core.inference.policy import UnscorableError, UnscorablePolicy
from airflow_mlops_provider.core.inference.predictions import PredictionsWriter
from airflow_mlops_provider.core.io.storage import ObjectStore
from tests.unit.core.inference.conftest import NetworkModel, expected
from tests.unit.core.inference.test_scoring import with_holes

AT = "2026-01-02T00:00:00+00:00"


def run(model: NetworkModel, inputs: ModelInputs, frame: pd.DataFrame, size: int, uri: str, policy=None):  # type: ignore[no-untyped-def]
    chunks = (frame.iloc[start : start + size] for start in range(0, len(frame), size))
    with PredictionsWriter(uri, ObjectStore()) as writer:
        totals = score_batches(
            chunks, model, inputs, policy or UnscorablePolicy(), ["customer_id"], "event_timestamp", writer, "3", AT
        )
        writer.commit()
    return totals


def test_chunked_scoring_writes_exactly_what_one_chunk_writes(
    rows: pd.DataFrame, model: NetworkModel, inputs: ModelInputs, tmp_path: Path
) -> None:
    frame = with_holes(rows)
    small = run(model, inputs, frame, 7, str(tmp_path / "small.parquet"))
    whole = run(model, inputs, frame, 10_000, str(tmp_path / "whole.parquet"))

    assert (small.rows, small.scored, small.unscorable, small.chunks) == (200, 196, 4, 29)
    assert (whole.rows, whole.scored, whole.unscorable, whole.chunks) == (200, 196, 4, 1)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "small.parquet"), pd.read_parquet(tmp_path / "whole.parquet")
    )
    np.testing.assert_array_equal(small.predictions, whole.predictions)
    np.testing.assert_array_equal(whole.predictions, expected(model, rows.drop(index=[3, 7, 11, 15])))


def test_the_drop_cap_is_checked_over_all_chunks_before_anything_is_committed(
    rows: pd.DataFrame, model: NetworkModel, inputs: ModelInputs, tmp_path: Path
) -> None:
    uri = tmp_path / "capped.parquet"

    with pytest.raises(UnscorableError, match=r"4 of 200 rows \(2.00%\)"):
        run(model, inputs, with_holes(rows), 7, str(uri), UnscorablePolicy(max_fraction=0.01))
    assert not uri.exists() and list(tmp_path.iterdir()) == []
