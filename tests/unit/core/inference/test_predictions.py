"""The predictions file: columns, statistics, and a writer that commits once or leaves nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_mlops_provider.contracts import PredictionColumn, ProblemType
from airflow_mlops_provider.core.inference.predictions import (
    PredictionsWriter,
    prediction_statistics,
    predictions_frame,
)
from airflow_mlops_provider.core.io.storage import ObjectStore, StorageConfig

AT = "2026-01-02T00:00:00+00:00"


def test_a_predictions_frame_has_the_keys_the_time_and_the_prediction_columns(rows: pd.DataFrame) -> None:
    frame = predictions_frame(rows.head(3), ["customer_id"], "event_timestamp", np.array([0.1, 0.6, 0.9]), "4", AT)

    assert list(frame.columns) == [
        "customer_id", "event_timestamp", PredictionColumn.PREDICTION, PredictionColumn.MODEL_VERSION,
        PredictionColumn.SCORED_AT,
    ]  # fmt: skip
    assert frame[PredictionColumn.PREDICTION].tolist() == [0.1, 0.6, 0.9]
    assert frame[PredictionColumn.MODEL_VERSION].tolist() == ["4"] * 3 and set(frame[PredictionColumn.SCORED_AT]) == {
        AT
    }


def test_statistics_of_the_predictions_with_the_positive_rate_of_a_binary_model() -> None:
    values = np.array([0.1, 0.2, 0.5, 0.7, 0.9])

    stats = prediction_statistics(values, ProblemType.BINARY)

    assert stats == pytest.approx(
        {
            "count": 5,
            "mean": 0.48,
            "std": float(np.std(values)),
            "min": 0.1,
            "p50": 0.5,
            "max": 0.9,
            "positive_rate": 0.6,
        }
    )
    assert "positive_rate" not in prediction_statistics(values, ProblemType.REGRESSION)
    assert prediction_statistics(np.zeros(0), ProblemType.BINARY) == {"count": 0.0}


def chunk(rows: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    part = rows.iloc[start:stop]
    return predictions_frame(part, ["customer_id"], "event_timestamp", np.linspace(0, 1, len(part)), "1", AT)


def test_chunks_appear_at_the_destination_only_on_commit(rows: pd.DataFrame, tmp_path: Path) -> None:
    uri = str(tmp_path / "out" / "run.parquet")
    with PredictionsWriter(uri, ObjectStore()) as writer:
        for start in range(0, 50, 20):
            writer.write(chunk(rows, start, start + 20))
        assert not Path(uri).exists()
        assert writer.commit() == uri

    written = pd.read_parquet(uri)
    assert pq.ParquetFile(uri).num_row_groups == 3 and writer.rows == 60
    pd.testing.assert_frame_equal(written, pd.concat([chunk(rows, s, s + 20) for s in (0, 20, 40)], ignore_index=True))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run.parquet"]  # no temporary file left


def test_a_run_that_fails_midway_leaves_the_previous_file(rows: pd.DataFrame, tmp_path: Path) -> None:
    uri = str(tmp_path / "run.parquet")
    chunk(rows, 0, 5).to_parquet(uri)
    before = Path(uri).read_bytes()

    with pytest.raises(RuntimeError, match="killed"), PredictionsWriter(uri, ObjectStore()) as writer:
        writer.write(chunk(rows, 0, 20))
        raise RuntimeError("killed")

    assert Path(uri).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.parquet"]


def test_a_chunk_with_other_column_types_is_refused_and_an_empty_run_has_nothing_to_commit(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    with PredictionsWriter(str(tmp_path / "run.parquet"), ObjectStore()) as writer:
        with pytest.raises(ValueError, match="no predictions were written"):
            writer.commit()
        writer.write(chunk(rows, 0, 5))
        with pytest.raises(ValueError, match="do not match the first chunk's"):
            writer.write(chunk(rows, 5, 10).assign(customer_id="c"))


def test_the_destination_must_be_in_the_allowed_roots(tmp_path: Path) -> None:
    store = ObjectStore(StorageConfig(roots=(str(tmp_path / "data"),)))

    with pytest.raises(PermissionError, match="outside the allowed data roots"):
        PredictionsWriter(str(tmp_path / "elsewhere" / "run.parquet"), store)
