"""P7: batch scoring rows/s through ``core.inference`` against ``pyfunc predict`` on the same frame.

The model is the bundled trainer's pyfunc (an untrained ``TabularMLP`` of the default size behind the
logged model's encoder), logged to a throwaway SQLite tracking store and loaded with
``mlflow.pyfunc.load_model``. On one frame of churn rows (4 numeric and 2 categorical features), the same
process times, in CPU seconds (robust to a busy machine) with torch on one thread, best of ``repeats``:

- baseline: ``model.predict(frame[features])``;
- ours: ``score_chunk`` (the unscorable check, the signature's typing, the padded predict), as the operator
  scores each chunk.

The note adds the whole run of ``score_batches`` over ``CHUNK_ROWS``-row chunks with the parquet file
written (what the operator does after reading), in rows/s. Goal: ours >= 0.9x the baseline's rows/s.

Run: ``.venv/bin/python -m benchmarks.bench_inference [--rows 200000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airflow_mlops_provider.contracts import ProblemType
from airflow_mlops_provider.core.inference.batch import score_batches
from airflow_mlops_provider.core.inference.model import ModelInputs
from airflow_mlops_provider.core.inference.policy import UnscorablePolicy
from airflow_mlops_provider.core.inference.predictions import PredictionsWriter
from airflow_mlops_provider.core.inference.scoring import score_chunk
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.operators.inference import CHUNK_ROWS
from benchmarks.harness import Figure, best_of
from demo import data as demo_data

ROWS = 200_000
SMOKE_ROWS = 2_000
GOAL_RATIO = 0.9
KEYS = [demo_data.ENTITY]
FEATURES = [*demo_data.FEATURES_NUMERIC, *demo_data.FEATURES_CATEGORICAL]


def logged_model(root: Path) -> Any:
    """The trainer's pyfunc around an untrained network of the default size, logged and loaded back."""
    import os

    import mlflow
    import mlflow.pyfunc
    import torch

    from airflow_mlops_provider.training.encoding import FeatureEncoder
    from airflow_mlops_provider.training.model import TabularMLP
    from airflow_mlops_provider.training.pyfunc_model import log_pyfunc_model

    rows = demo_data.generate_batch(1_000, "2026-01-01", seed=1)
    encoder = FeatureEncoder.fit(
        rows, ProblemType.BINARY, demo_data.FEATURES_NUMERIC, demo_data.FEATURES_CATEGORICAL, demo_data.TARGET
    )
    torch.manual_seed(0)
    network = TabularMLP(len(encoder.numeric), encoder.cardinalities, 4, [64, 32])
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    with mlflow.start_run():
        info = log_pyfunc_model(network, encoder, rows)
    model = mlflow.pyfunc.load_model(info.model_uri)
    return model, ModelInputs.from_model({}, model.metadata.get_input_schema())


def write_all(model: Any, inputs: ModelInputs, frame: pd.DataFrame, out: Path) -> int:
    """The operator's loop after reading: score ``CHUNK_ROWS`` at a time and write the parquet file."""
    chunks = (frame.iloc[start : start + CHUNK_ROWS] for start in range(0, len(frame), CHUNK_ROWS))
    with PredictionsWriter(str(out), ObjectStore()) as writer:
        totals = score_batches(
            chunks, model, inputs, UnscorablePolicy(), KEYS, demo_data.TIMESTAMP, writer, "1", "2026-01-01T00:00:00Z"
        )
        writer.commit()
    return totals.scored


def bench(rows: int, repeats: int) -> list[Figure]:
    """Time both sides on one frame of ``rows`` rows and check they predict the same.

    :param rows: rows in the frame.
    :param repeats: runs of each timed side; the best counts.
    """
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        model, inputs = logged_model(Path(tmp))
        frame = demo_data.generate_batch(rows, "2026-02-01", seed=2)
        features = frame[FEATURES]
        # One torch thread: the clock is CPU time, and with a pool of threads it would also count OpenMP's
        # spin-waits, charged to whichever side happens to follow a parallel region (0.59-1.11x on one frame).
        torch.set_num_threads(1)
        model.predict(features.head(1_000))  # warm up torch before either side is timed
        base_seconds, baseline = best_of(partial(model.predict, features), repeats, time.process_time)
        ours_seconds, done = best_of(
            partial(score_chunk, model, frame, inputs, UnscorablePolicy(), KEYS), repeats, time.process_time
        )
        run_seconds, scored = best_of(
            partial(write_all, model, inputs, frame, Path(tmp, "predictions.parquet")), 1, time.process_time
        )
    difference = float(np.max(np.abs(done.predictions - np.asarray(baseline, dtype=np.float64))))
    ours, base = rows / ours_seconds, rows / base_seconds
    note = (
        f"max |ours - pyfunc| = {difference:.1e}; whole run (score_batches, {CHUNK_ROWS:,}-row chunks, parquet "
        f"written): {scored / run_seconds:,.0f} rows/s = {scored / run_seconds / base:.2f}x"
    )
    return [
        Figure(
            goal_id="P7",
            what=f"score_chunk, {rows:,} rows x {len(FEATURES)} features (torch MLP 64-32)",
            ours=ours,
            baseline=base,
            baseline_name="mlflow pyfunc predict, CPU, torch on 1 thread",
            unit="rows/s",
            goal=f"ratio >= {GOAL_RATIO}",
            met=ours >= GOAL_RATIO * base and difference < 1e-6,
            note=note,
        )
    ]


def run(smoke: bool) -> list[Figure]:
    """The P7 figure: 200k rows (best of 3), or once at a tiny size.

    :param smoke: one run of each side at :data:`SMOKE_ROWS` rows.
    """
    return bench(SMOKE_ROWS, 1) if smoke else bench(ROWS, 3)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for figure in bench(args.rows, args.repeats):
        print(f"{figure.what}: {figure.ours:,.0f} vs {figure.baseline:,.0f} {figure.unit} ({figure.ratio:.2f}x)")
        print(f"  {figure.note}")


if __name__ == "__main__":
    main()
