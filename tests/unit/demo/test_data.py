from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demo.data import (
    ENTITY,
    FEATURES_CATEGORICAL,
    FEATURES_NUMERIC,
    PLANS,
    REGIONS,
    TARGET,
    TIMESTAMP,
    assign_splits,
    generate_batch,
)

START = "2024-05-01"


def _batch(**kwargs: float) -> pd.DataFrame:
    return generate_batch(20_000, START, days=7, seed=5, **kwargs)


def test_same_arguments_same_frame() -> None:
    pd.testing.assert_frame_equal(generate_batch(500, START, seed=3), generate_batch(500, START, seed=3))
    assert not generate_batch(500, START, seed=3).equals(generate_batch(500, START, seed=4))


def test_schema_and_ranges() -> None:
    df = generate_batch(2000, START, days=3, seed=1)
    assert list(df.columns) == [ENTITY, TIMESTAMP, *FEATURES_NUMERIC, *FEATURES_CATEGORICAL, TARGET]
    assert str(df[TIMESTAMP].dt.tz) == "UTC"
    assert df[TIMESTAMP].is_monotonic_increasing
    start = pd.Timestamp(START, tz="UTC")
    assert df[TIMESTAMP].min() >= start and df[TIMESTAMP].max() < start + pd.Timedelta(days=3)
    assert df[ENTITY].is_unique and df[ENTITY].dtype == np.int64
    assert df["tenure_months"].between(1, 72).all()
    assert (df["monthly_charges"] >= 10).all() and (df["usage_gb"] > 0).all()
    assert set(df["plan"]) == set(PLANS) and set(df["region"]) == set(REGIONS)
    assert set(df[TARGET]) == {0, 1}
    assert 0.1 < df[TARGET].mean() < 0.4


def test_ids_stable_per_start_day_and_distinct_across_days() -> None:
    day1 = generate_batch(100, START, seed=1)[ENTITY]
    assert day1.equals(generate_batch(100, START, seed=2)[ENTITY])
    assert not set(day1) & set(generate_batch(100, "2024-05-02", seed=1)[ENTITY])


def test_aware_start_is_converted_to_utc() -> None:
    df = generate_batch(10, pd.Timestamp("2024-05-01 02:00", tz="Europe/Berlin"))
    assert df[TIMESTAMP].min() >= pd.Timestamp("2024-05-01 00:00", tz="UTC")


def test_target_is_learnable_from_features() -> None:
    df = _batch()
    assert df[df["tenure_months"] <= 3][TARGET].mean() > 2 * df[df["tenure_months"] >= 36][TARGET].mean()
    assert df[df["support_calls"] >= 4][TARGET].mean() > 2 * df[df["support_calls"] == 0][TARGET].mean()


def test_covariate_drift_shifts_feature_distributions() -> None:
    base, drifted = _batch(), _batch(covariate_drift=1.0)
    for column in ("monthly_charges", "usage_gb", "support_calls"):
        assert drifted[column].mean() > 1.3 * base[column].mean()
    share = {name: (df["plan"] == "premium").mean() for name, df in (("base", base), ("drifted", drifted))}
    assert share["drifted"] > 2 * share["base"]


def test_concept_drift_changes_the_relationship_not_the_features() -> None:
    base, drifted = _batch(), _batch(concept_drift=1.0)
    pd.testing.assert_frame_equal(base.drop(columns=TARGET), drifted.drop(columns=TARGET))
    for df, newcomers_churn_more in ((base, True), (drifted, False)):
        newcomers = df[df["tenure_months"] <= 3][TARGET].mean()
        loyal = df[df["tenure_months"] >= 36][TARGET].mean()
        assert (newcomers > 1.5 * loyal) if newcomers_churn_more else (loyal > 1.5 * newcomers)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_rows": 0}, {"days": 0}, {"covariate_drift": 1.5}, {"concept_drift": -0.1}],
)
def test_invalid_arguments(kwargs: dict[str, float]) -> None:
    arguments: dict[str, object] = {"n_rows": 10, "start": START} | kwargs
    with pytest.raises(ValueError):
        generate_batch(**arguments)  # type: ignore[arg-type]


def test_splits_are_temporal_and_keep_row_order() -> None:
    df = generate_batch(1000, START, days=10, seed=2).sample(frac=1.0, random_state=0)
    split = assign_splits(df, validation=0.2, holdout=0.1)
    assert split.index.equals(df.index)
    counts = split["split"].value_counts()
    assert (counts["train"], counts["validation"], counts["holdout"]) == (700, 200, 100)
    times = split.groupby("split")[TIMESTAMP]
    assert times.max()["train"] <= times.min()["validation"]
    assert times.max()["validation"] <= times.min()["holdout"]
    assert "split" not in df.columns


@pytest.mark.parametrize(("validation", "holdout"), [(-0.1, 0.1), (0.5, 0.5), (0.1, 1.0)])
def test_invalid_split_fractions(validation: float, holdout: float) -> None:
    with pytest.raises(ValueError, match="validation"):
        assign_splits(generate_batch(10, START), validation=validation, holdout=holdout)


def test_split_by_unknown_column() -> None:
    with pytest.raises(ValueError, match="nope"):
        assign_splits(generate_batch(10, START), by="nope")
