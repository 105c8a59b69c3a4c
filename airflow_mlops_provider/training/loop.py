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

from airflow_mlops_provider.contracts import ProblemType
from airflow_mlops_provider.core.models.metrics import compute_metrics
from airflow_mlops_provider.failpoints import failpoint
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
    :param samples_per_second: training rows processed per second of the loop (validation included).
    :param gpu_peak_memory_mb: the peak CUDA memory allocated while training; ``None`` on CPU.
    """

    model: TabularMLP
    best_epoch: int
    epochs_run: int
    seconds: float
    samples_per_second: float
    gpu_peak_memory_mb: float | None


@dataclass(frozen=True)
class DevicePlan:
    """How training uses its device.

    :param device: where the network runs.
    :param bf16_autocast: run the forward pass under bfloat16 autocast (CUDA with bf16 support).
    :param data_on_device: the training tensors are copied to the device once, not batch by batch.
    :param pin_memory: batches are sliced from page-locked host memory and copied without blocking.
    """

    device: torch.device
    bf16_autocast: bool
    data_on_device: bool
    pin_memory: bool

    @property
    def non_blocking(self) -> bool:
        """Host-to-device copies overlap compute (only safe from pinned memory)."""
        return self.pin_memory


#: Share of the free device memory the training tensors may take to be copied there once.
DEVICE_DATA_SHARE = 0.25


def plan_device(device: torch.device, data_bytes: int, free_bytes: int, bf16_supported: bool) -> DevicePlan:
    """Decide how to use ``device``: on CUDA, bf16 autocast when supported, and the training tensors on the
    device when they take at most :data:`DEVICE_DATA_SHARE` of its free memory, else pinned host memory
    with non-blocking copies; on CPU, none of these.

    :param device: the resolved device.
    :param data_bytes: size of the encoded training tensors.
    :param free_bytes: free memory of the device (ignored on CPU).
    :param bf16_supported: the device computes in bfloat16.
    """
    if device.type != "cuda":
        return DevicePlan(device, bf16_autocast=False, data_on_device=False, pin_memory=False)
    on_device = data_bytes <= DEVICE_DATA_SHARE * free_bytes
    return DevicePlan(device, bf16_autocast=bf16_supported, data_on_device=on_device, pin_memory=not on_device)


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


@dataclass(frozen=True)
class _Encoded:
    """Labelled rows encoded once: the network's inputs, the raw labels and the labels on the training scale."""

    numeric: np.ndarray
    categories: np.ndarray
    y: np.ndarray
    y_scaled: torch.Tensor

    @classmethod
    def of(cls, encoder: FeatureEncoder, df: pd.DataFrame, target: str) -> _Encoded:
        numeric, categories = encoder.encode(df)
        y = df[target].to_numpy(dtype=np.float64)
        return cls(numeric, categories, y, torch.from_numpy(encoder.scale_target(y)))


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
    return _evaluate(model, encoder, _Encoded.of(encoder, df, target), device)


def _evaluate(
    model: TabularMLP, encoder: FeatureEncoder, rows: _Encoded, device: torch.device | None
) -> tuple[float, dict[str, float]]:
    outputs = predict_raw(model, rows.numeric, rows.categories, device=device)
    loss = float(_loss_fn(encoder.problem_type)(torch.from_numpy(outputs.astype(np.float32)), rows.y_scaled))
    return loss, compute_metrics(encoder.problem_type, rows.y, encoder.decode(outputs))


def train_model(config: TrainConfig, encoder: FeatureEncoder, splits: Splits, on_epoch: EpochCallback) -> TrainResult:
    """Train a :class:`TabularMLP`, calling ``on_epoch(epoch, metrics)`` after each epoch.

    ``metrics`` holds ``train_loss``, ``val_loss`` and ``val_<metric>`` for the problem type. The splits
    are encoded once; each epoch shuffles the training tensors with one gather and steps through
    contiguous slices of them (no per-row Python, no DataLoader).

    :param config: the trainer configuration.
    :param encoder: encoder fitted on the training split.
    :param splits: the data.
    :param on_epoch: per-epoch callback, e.g. logging to MLflow with ``step=epoch``.
    :raises TrainingDivergedError: the loss became NaN or infinite.
    """
    device = resolve_device(config.device)
    seed_everything(config.seed, config.cpu_threads)
    train = _Encoded.of(encoder, splits.train, config.target)
    validation = _Encoded.of(encoder, splits.validation, config.target)
    tensors = [torch.from_numpy(train.numeric), torch.from_numpy(train.categories), train.y_scaled]
    plan = _plan(device, sum(t.nbytes for t in tensors))
    if plan.data_on_device:
        tensors = [t.to(device) for t in tensors]
    generator = torch.Generator(tensors[0].device).manual_seed(config.seed)
    model = TabularMLP(len(encoder.numeric), encoder.cardinalities, config.embedding_dim, list(config.hidden_sizes)).to(
        device
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = _loss_fn(config.problem_type)
    rows = len(train.y)
    best_loss, best_epoch, best_state = float("inf"), 0, model.state_dict()
    started = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        total = 0.0
        order = torch.randperm(rows, generator=generator, device=generator.device)
        shuffled = [t[order] for t in tensors]
        if plan.pin_memory:
            shuffled = [t.pin_memory() for t in shuffled]
        for batch, begin in enumerate(range(0, rows, config.batch_size), start=1):
            x_num, x_cat, y_batch = (
                t[begin : begin + config.batch_size].to(device, non_blocking=plan.non_blocking) for t in shuffled
            )
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=plan.bf16_autocast):
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
        val_loss, val_metrics = _evaluate(model, encoder, validation, device)
        metrics = {"train_loss": total / rows, "val_loss": val_loss}
        metrics |= {f"val_{name}": value for name, value in val_metrics.items()}
        on_epoch(epoch, metrics)
        log.info("epoch %d/%d %s", epoch, config.epochs, _fmt(metrics))
        failpoint("training.epoch_end")
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif config.patience and epoch - best_epoch >= config.patience:
            log.info("early stopping: no better val_loss for %d epochs", config.patience)
            break
    seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return TrainResult(model.cpu().eval(), best_epoch, epoch, seconds, rows * epoch / seconds, peak_mb)


def _plan(device: torch.device, data_bytes: int) -> DevicePlan:
    """:func:`plan_device` with what CUDA reports about ``device``."""
    if device.type != "cuda":
        return plan_device(device, data_bytes, 0, bf16_supported=False)
    torch.cuda.reset_peak_memory_stats(device)
    free_bytes, _total = torch.cuda.mem_get_info(device)
    return plan_device(device, data_bytes, free_bytes, bf16_supported=torch.cuda.is_bf16_supported())


def _loss_fn(problem_type: str) -> nn.Module:
    return nn.BCEWithLogitsLoss() if problem_type == ProblemType.BINARY else nn.MSELoss()


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
