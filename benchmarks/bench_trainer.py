"""P5: the trainer's training loop against a plain PyTorch loop, in samples per second.

Both sides train the same network (12 numeric inputs, hidden 64-32, one logit: ``TabularMLP``) with Adam,
batch 256, on the same rows (160k training and 40k validation rows, a seeded synthetic binary problem),
on CPU with one torch thread, in the same process, alternately. The baseline is the loop a PyTorch user
writes: shuffled index batches over tensors built beforehand, one validation loss per epoch. Ours is
``train_model`` as the trainer calls it: encoding of the splits included, validation loss and metrics
(roc_auc, accuracy, log_loss) per epoch, best-epoch tracking. Goal: ours / baseline >= 0.9.

Run: ``.venv/bin/python -m benchmarks.bench_trainer [--rows 160000] [--epochs 3] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from airflow_mlops_provider.training.data import Splits
from airflow_mlops_provider.training.encoding import FeatureEncoder
from airflow_mlops_provider.training.loop import train_model
from airflow_mlops_provider.training.model import TabularMLP
from airflow_mlops_provider.training.options import TrainConfig
from benchmarks.harness import Figure, best_of

GOAL = 0.9
FEATURES = [f"x{i}" for i in range(12)]
TARGET = "label"
BATCH = 256
HIDDEN = (64, 32)


def make_splits(rows: int, seed: int = 0) -> Splits:
    """``rows`` training rows and a quarter as many validation rows of a noisy linear binary problem."""
    rng = np.random.default_rng(seed)

    def frame(n: int) -> pd.DataFrame:
        x = rng.normal(size=(n, len(FEATURES)))
        logits = x @ np.linspace(-1, 1, len(FEATURES))
        y = (logits + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
        return pd.DataFrame(x, columns=FEATURES).assign(**{TARGET: y})

    return Splits(frame(rows), frame(rows // 4), None, "")


def config(epochs: int) -> TrainConfig:
    """The trainer configuration both sides share."""
    return TrainConfig(
        data_uri="bench.parquet",
        target=TARGET,
        problem_type="binary",
        numeric_features=tuple(FEATURES),
        epochs=epochs,
        batch_size=BATCH,
        hidden_sizes=HIDDEN,
        device="cpu",
        cpu_threads=1,
    )


def plain_loop(splits: Splits, epochs: int) -> float:
    """The baseline: pre-built tensors, index batches, Adam, one validation loss per epoch; returns it."""
    torch.manual_seed(0)
    x = torch.from_numpy(splits.train[FEATURES].to_numpy(np.float32))
    y = torch.from_numpy(splits.train[TARGET].to_numpy(np.float32))
    x_val = torch.from_numpy(splits.validation[FEATURES].to_numpy(np.float32))
    y_val = torch.from_numpy(splits.validation[TARGET].to_numpy(np.float32))
    model = TabularMLP(len(FEATURES), [], 4, list(HIDDEN))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    no_categories = torch.zeros((0, 0), dtype=torch.int64)  # the network has no embeddings to index
    val_loss = float("nan")
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(BATCH):
            loss = loss_fn(model(x[idx], no_categories), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            val_loss = float(loss_fn(model(x_val, no_categories), y_val))
    return val_loss


def ours(splits: Splits, epochs: int) -> float:
    """The trainer's loop; returns the best validation loss it reported."""
    cfg = config(epochs)
    encoder = FeatureEncoder.fit(splits.train, cfg.problem_type, FEATURES, [], TARGET)
    losses: list[float] = []
    train_model(cfg, encoder, splits, on_epoch=lambda _epoch, metrics: losses.append(metrics["val_loss"]))
    return min(losses)


def run(smoke: bool) -> list[Figure]:
    """Time both loops on the same data, alternately, best of the repeats.

    :param smoke: tiny sizes, once (seconds); else 160k rows, 3 epochs, best of 3.
    """
    rows, epochs, repeats = (4_000, 1, 1) if smoke else (160_000, 3, 3)
    return [measure(rows, epochs, repeats)]


def measure(rows: int, epochs: int, repeats: int) -> Figure:
    """The P5 figure for ``rows`` training rows and ``epochs`` epochs.

    :param rows: training rows.
    :param epochs: epochs per timed run.
    :param repeats: timed runs per side (the best counts).
    """
    torch.set_num_threads(1)
    splits = make_splits(rows)
    plain_loop(splits, 1)  # warm-up: torch's first-call costs are nobody's
    baseline_s, ours_s = float("inf"), float("inf")
    for _ in range(repeats):
        baseline_s = min(baseline_s, best_of(lambda: plain_loop(splits, epochs), 1)[0])
        ours_s = min(ours_s, best_of(lambda: ours(splits, epochs), 1)[0])
    samples = rows * epochs
    ratio = baseline_s / ours_s
    return Figure(
        goal_id="P5",
        what=f"training samples/s, {rows} rows x {epochs} epochs, MLP 12-64-32-1, batch {BATCH}, CPU 1 thread",
        ours=samples / ours_s,
        baseline=samples / baseline_s,
        baseline_name="plain torch loop (index batches over pre-built tensors, per-epoch val loss)",
        unit="samples/s",
        goal=f"ratio >= {GOAL}",
        met=ratio >= GOAL,
        note=f"per epoch: ours {ours_s / epochs:.2f} s (with val metrics), plain {baseline_s / epochs:.2f} s",
    )


def main() -> None:
    """Print the figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=160_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    figure = measure(args.rows, args.epochs, args.repeats)
    print(figure)
    print(f"ratio {figure.ratio:.2f} (goal {figure.goal}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
