"""Seeded generator of the demo problem: binary customer churn on tabular features, with optional drift.

Each row is one customer's snapshot at ``event_timestamp`` with its features and whether it churned.
Customer ids are unique within a batch and derived from the batch's start day
(``day_number * 10_000_000 + row``), so regenerating the same window yields the same ids (idempotent
re-ingestion) while batches that start on different days never collide.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from airflow_mlops_provider.core.io.splits import temporal_split

ENTITY = "customer_id"
TIMESTAMP = "event_timestamp"
TARGET = "churned"
FEATURES_NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "usage_gb"]
FEATURES_CATEGORICAL = ["plan", "region"]

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")

_IDS_PER_DAY = 10_000_000
_PLAN_MIX = np.array([0.5, 0.35, 0.15])
_PLAN_MIX_DRIFTED = np.array([0.2, 0.35, 0.45])
_REGION_MIX = np.array([0.3, 0.25, 0.25, 0.2])
_PLAN_PRICE = np.array([30.0, 60.0, 95.0])
_PLAN_USAGE = np.array([12.0, 25.0, 45.0])


def generate_batch(
    n_rows: int,
    start: datetime | str | pd.Timestamp,
    days: int = 1,
    seed: int = 0,
    covariate_drift: float = 0.0,
    concept_drift: float = 0.0,
) -> pd.DataFrame:
    """Generate ``n_rows`` churn rows with timestamps spread over ``days`` days from ``start``, oldest first.

    :param n_rows: number of rows (at least 1, at most 10 million).
    :param start: start of the window; a naive value is taken as UTC.
    :param days: length of the window in days.
    :param seed: random seed; the same arguments always give the same frame.
    :param covariate_drift: 0..1, shifts features: higher charges and usage, more premium plans, more calls.
    :param concept_drift: 0..1, blends the churn function toward a different one (tenure and region
        effects reversed, price sensitivity doubled).
    """
    if not 1 <= n_rows <= _IDS_PER_DAY:
        raise ValueError(f"n_rows must be in [1, {_IDS_PER_DAY}], got {n_rows}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    for name, value in (("covariate_drift", covariate_drift), ("concept_drift", concept_drift)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    start_ts = _utc(start)
    rng = np.random.default_rng(seed)
    cov = covariate_drift

    offsets_ms = np.sort(rng.integers(0, days * 86_400_000, n_rows))
    plan_idx = rng.choice(3, size=n_rows, p=(1 - cov) * _PLAN_MIX + cov * _PLAN_MIX_DRIFTED)
    region_idx = rng.choice(4, size=n_rows, p=_REGION_MIX)
    tenure = np.clip(np.round(rng.gamma(2.0, 12.0, n_rows) * (1 - 0.4 * cov)), 1, 72).astype(np.int64)
    charges = np.clip(_PLAN_PRICE[plan_idx] * (1 + 0.25 * cov) + rng.normal(0.0, 8.0, n_rows), 10.0, None)
    usage = rng.lognormal(np.log(_PLAN_USAGE[plan_idx] * (1 + 0.8 * cov)), 0.5)
    support_calls = rng.poisson(1.0 + 1.5 * cov + 1.5 * np.exp(-tenure / 10.0)).astype(np.int64)

    base = _churn_logit(tenure, charges, support_calls, usage, plan_idx, region_idx)
    drifted = _drifted_logit(tenure, charges, support_calls, usage, plan_idx, region_idx)
    logit = (1 - concept_drift) * base + concept_drift * drifted
    churned = (rng.uniform(size=n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    day_number = (start_ts.normalize() - pd.Timestamp(0, tz="UTC")).days
    return pd.DataFrame(
        {
            ENTITY: np.int64(day_number) * _IDS_PER_DAY + np.arange(n_rows, dtype=np.int64),
            TIMESTAMP: start_ts + pd.to_timedelta(offsets_ms, unit="ms"),
            "tenure_months": tenure,
            "monthly_charges": np.round(charges, 2),
            "support_calls": support_calls,
            "usage_gb": np.round(usage, 3),
            "plan": pd.Categorical.from_codes(plan_idx, PLANS).astype(str),
            "region": pd.Categorical.from_codes(region_idx, REGIONS).astype(str),
            TARGET: churned,
        }
    )


def assign_splits(
    df: pd.DataFrame, validation: float = 0.15, holdout: float = 0.15, by: str = TIMESTAMP
) -> pd.DataFrame:
    """Return a copy of ``df`` with a temporal ``split`` column: ``train``, ``validation``, ``holdout``.

    The oldest rows are ``train``, the newest ``holdout``.

    :param df: the frame; its row order is kept.
    :param validation: fraction of rows for validation.
    :param holdout: fraction of rows for the holdout (the newest).
    :param by: column to order by (stable, so ties keep their order).
    """
    return temporal_split(df, by, validation, holdout)


def _churn_logit(
    tenure: np.ndarray,
    charges: np.ndarray,
    calls: np.ndarray,
    usage: np.ndarray,
    plan: np.ndarray,
    region: np.ndarray,
) -> np.ndarray:
    """Base churn log-odds: new, pricey, unhappy or low-usage customers churn, as do premium complainers."""
    return (
        -3.4
        + 4.0 * np.exp(-tenure / 8.0)
        + 0.07 * (charges - 55.0)
        + 0.8 * calls
        - 2.0 * np.tanh((usage - 20.0) / 15.0)
        + np.array([0.6, 0.0, -1.5])[plan]
        + np.array([0.0, 1.0, -0.3, -0.8])[region]
        + 2.0 * ((plan == 2) & (calls >= 3))
    )


def _drifted_logit(
    tenure: np.ndarray,
    charges: np.ndarray,
    calls: np.ndarray,
    usage: np.ndarray,
    plan: np.ndarray,
    region: np.ndarray,
) -> np.ndarray:
    """Churn log-odds after a market change: long-tenured customers leave, price matters twice as much."""
    return (
        -3.2
        + 3.0 * np.tanh(tenure / 24.0)
        + 0.08 * (charges - 55.0)
        + 0.15 * calls
        + 0.6 * np.tanh((usage - 20.0) / 15.0)
        + np.array([-0.5, 0.0, 0.5])[plan]
        + np.array([0.0, -0.6, 0.3, 0.6])[region]
    )


def _utc(value: datetime | str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
