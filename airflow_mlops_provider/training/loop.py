"""The training loop: seeded and deterministic on CPU, bf16 autocast on CUDA, early stopping on val loss."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from airflow_mlops_provider.contracts import ProblemType
from airflow_mlops_provider.core.models.metrics import compute_metrics
from airflow_mlops_provider.training.data import Splits
from airflow_mlops_provider.training.encoding import FeatureEncoder
from airflow_mlops_provider.training.errors import TrainerInputError, TrainingDivergedError
from airflow_mlops_provider.training.model import TabularMLP, predict_raw
from airflow_mlops_provider.training.options import TrainConfig

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], object]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_model`.

    :param model: the network with the weights of the best epoch, on CPU, in eval mode.
    :param best_epoch: 1-based epoch with the lowest validation loss.
    :param epochs_run: epochs actually run (fewer than configured after early stopping).
    :param seconds: wall time of the loop.
    """

    model: TabularMLP
    best_epoch: int
    epochs_run: int
    seconds: float


def resolve_device(name: str) -> torch.device:
    """Pick the device: ``auto`` means CUDA when available.

    :param name: ``auto``, ``cpu`` or ``cuda``.
    :raises TrainerInputError: ``cuda`` requested but not available.
    """
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainerInputError("device 'cuda' requested but CUDA is not available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int, cpu_threads: int) -> None:
    """Seed Python, numpy and torch, fix the CPU thread count and ask for deterministic kernels.

    :param seed: the seed.
    :param cpu_threads: torch intra-op threads (results can depend on it).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(cpu_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def evaluate(
    model: TabularMLP,
    encoder: FeatureEncoder,
    df: pd.DataFrame,
    target: str,
    device: torch.device | None = None,
) -> tuple[float, dict[str, float]]:
    """Return the loss (on the training scale) and the problem type's metrics of ``model`` on ``df``.

    :param model: the network.
    :param encoder: the fitted encoder.
    :param df: labelled rows.
    :param target: label column.
    :param device: where the model lives; CPU by default.
    """
    outputs = predict_raw(model, *encoder.encode(df), device=device)
    y = df[target].to_numpy(dtype=np.float64)
    scaled = torch.from_numpy(encoder.scale_target(y))
    loss = float(_loss_fn(encoder.problem_type)(torch.from_numpy(outputs.astype(np.float32)), scaled))
    return loss, compute_metrics(encoder.problem_type, y, encoder.decode(outputs))


def train_model(config: TrainConfig, encoder: FeatureEncoder, splits: Splits, on_epoch: EpochCallback) -> TrainResult:
    """Train a :class:`TabularMLP`, calling ``on_epoch(epoch, metrics)`` after each epoch.

    ``metrics`` holds ``train_loss``, ``val_loss`` and ``val_<metric>`` for the problem type.

    :param config: the trainer configuration.
    :param encoder: encoder fitted on the training split.
    :param splits: the data.
    :param on_epoch: per-epoch callback, e.g. logging to MLflow with ``step=epoch``.
    :raises TrainingDivergedError: the loss became NaN or infinite.
    """
    device = resolve_device(config.device)
    cuda = device.type == "cuda"
    seed_everything(config.seed, config.cpu_threads)
    numeric, categories = encoder.encode(splits.train)
    y = encoder.scale_target(splits.train[config.target].to_numpy())
    loader = DataLoader(
        TensorDataset(torch.from_numpy(numeric), torch.from_numpy(categories), torch.from_numpy(y)),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
        num_workers=0,
        pin_memory=cuda,
    )
    model = TabularMLP(len(encoder.numeric), encoder.cardinalities, config.embedding_dim, list(config.hidden_sizes)).to(
        device
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = _loss_fn(config.problem_type)
    best_loss, best_epoch, best_state = float("inf"), 0, model.state_dict()
    started = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        total = 0.0
        for batch, (x_num, x_cat, y_batch) in enumerate(loader, start=1):
            x_num, x_cat, y_batch = (t.to(device, non_blocking=cuda) for t in (x_num, x_cat, y_batch))
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                outputs = model(x_num, x_cat)
            loss = loss_fn(outputs.float(), y_batch)
            value = loss.item()
            if not np.isfinite(value):
                raise TrainingDivergedError(
                    f"loss is {value} at epoch {epoch}, batch {batch}; "
                    "try a lower --learning-rate or check the feature scales"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value * len(y_batch)
        val_loss, val_metrics = evaluate(model, encoder, splits.validation, config.target, device)
        metrics = {"train_loss": total / len(y), "val_loss": val_loss}
        metrics |= {f"val_{name}": value for name, value in val_metrics.items()}
        on_epoch(epoch, metrics)
        log.info("epoch %d/%d %s", epoch, config.epochs, _fmt(metrics))
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif config.patience and epoch - best_epoch >= config.patience:
            log.info("early stopping: no better val_loss for %d epochs", config.patience)
            break
    model.load_state_dict(best_state)
    return TrainResult(model.cpu().eval(), best_epoch, epoch, time.perf_counter() - started)


def _loss_fn(problem_type: str) -> nn.Module:
    return nn.BCEWithLogitsLoss() if problem_type == ProblemType.BINARY else nn.MSELoss()


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
