"""Model quality metrics in plain numpy (no scikit-learn), shared by the trainer and the promotion gate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from airflow_mlops_provider.contracts import PROBLEM_TYPES, ProblemType

METRIC_DIRECTIONS: dict[str, str] = {
    "rmse": "minimize",
    "mae": "minimize",
    "r2": "maximize",
    "roc_auc": "maximize",
    "accuracy": "maximize",
    "log_loss": "minimize",
}

#: The metrics :func:`compute_metrics` gives for each problem type.
METRICS_BY_PROBLEM: dict[str, tuple[str, ...]] = {
    ProblemType.BINARY: ("roc_auc", "accuracy", "log_loss"),
    ProblemType.REGRESSION: ("rmse", "mae", "r2"),
}
#: The values each metric can take (``None``: unbounded on that side).
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    "rmse": (0.0, None),
    "mae": (0.0, None),
    "r2": (None, 1.0),
    "roc_auc": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "log_loss": (0.0, None),
}

_EPS = 1e-15


def check_metric(metric: str, problem_type: str) -> None:
    """Refuse an unknown problem type or metric, or a metric of another problem type.

    :param metric: e.g. ``roc_auc``.
    :param problem_type: ``binary`` or ``regression``.
    :raises ValueError: naming the choices.
    """
    if problem_type not in METRICS_BY_PROBLEM:
        raise ValueError(f"unknown problem_type {problem_type!r}; choose one of {sorted(METRICS_BY_PROBLEM)}")
    if metric not in METRIC_DIRECTIONS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {sorted(METRIC_DIRECTIONS)}")
    if metric not in METRICS_BY_PROBLEM[problem_type]:
        raise ValueError(
            f"metric {metric!r} does not apply to problem_type {problem_type!r}; "
            f"choose one of {list(METRICS_BY_PROBLEM[problem_type])}"
        )


def compute_metrics(problem_type: str, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """Compute the metrics of ``problem_type`` for predictions against ground truth.

    :param problem_type: ``"regression"`` (rmse, mae, r2) or ``"binary"`` (roc_auc, accuracy, log_loss).
    :param y_true: true values; for ``binary`` labels in {0, 1}.
    :param y_pred: predictions; for ``binary`` the probability of class 1.
    :raises ValueError: unknown problem type, empty or NaN input, length mismatch, non-binary labels.
    """
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem_type {problem_type!r}; expected one of {PROBLEM_TYPES}")
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if true.size != pred.size:
        raise ValueError(f"length mismatch: y_true has {true.size} values, y_pred has {pred.size}")
    if true.size == 0:
        raise ValueError("cannot compute metrics on empty input")
    if np.isnan(true).any() or np.isnan(pred).any():
        raise ValueError("y_true and y_pred must not contain NaN")
    return _regression(true, pred) if problem_type == ProblemType.REGRESSION else _binary(true, pred)


def _regression(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - true
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else 0.0
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "r2": r2}


def _binary(true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    if not np.isin(true, (0.0, 1.0)).all():
        raise ValueError("binary y_true must contain only 0 and 1")
    clipped = np.clip(prob, _EPS, 1.0 - _EPS)
    log_loss = -float(np.mean(true * np.log(clipped) + (1.0 - true) * np.log(1.0 - clipped)))
    accuracy = float(np.mean((prob >= 0.5) == (true == 1.0)))
    return {"roc_auc": roc_auc(true, prob), "accuracy": accuracy, "log_loss": log_loss}


def roc_auc(true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney rank formula, ties given their average rank.

    :param true: labels in {0, 1}.
    :param score: scores, higher meaning more likely class 1.
    :raises ValueError: only one class present (AUC undefined).
    """
    n_pos = int(np.sum(true == 1.0))
    n_neg = true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes in y_true")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    # average 1-based rank for each group of tied scores
    _, starts, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    group_ranks = starts + (counts + 1) / 2.0
    ranks = np.empty(score.size, dtype=np.float64)
    ranks[order] = np.repeat(group_ranks, counts)
    rank_sum = float(np.sum(ranks[true == 1.0]))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
