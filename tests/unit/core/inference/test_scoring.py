"""The unscorable policy and chunk scoring, with a real torch network behind the logged model's predict code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.contracts import Unscorable
from airflow_mlops_provider.core.inference.model import ModelInputs
from airflow_mlops_provider.core.inference.policy import UnscorableError, UnscorablePolicy
from airflow_mlops_provider.core.inference.scoring import model_frame, predict, score_chunk, unscorable_rows
from tests.unit.core.inference.conftest import FEATURES, NetworkModel, expected

FILL = {"tenure_months": 12, "monthly_charges": 50.0, "support_calls": 0, "usage_gb": 20.0, "plan": "basic",
        "region": "north"}  # fmt: skip


def with_holes(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows 3 and 7 miss a numeric feature, row 11 a category, row 15 everything (an unknown entity)."""
    frame = rows.copy()
    frame["tenure_months"] = frame["tenure_months"].astype("float64")
    frame.loc[3, "tenure_months"] = np.nan
    frame.loc[7, "usage_gb"] = np.nan
    frame.loc[11, "plan"] = None
    frame.loc[15, list(FEATURES)] = None
    return frame


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "skip"}, "unscorable must be one of"),
        ({"max_fraction": 1.5}, r"in \[0, 1\]"),
        ({"action": Unscorable.FILL}, "needs fill_values"),
        ({"action": Unscorable.DROP, "fill_values": {"plan": "basic"}}, "apply only to unscorable='fill'"),
    ],
)
def test_a_policy_refuses_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UnscorablePolicy(**kwargs)  # type: ignore[arg-type]


def test_fill_values_must_cover_every_feature_with_a_value() -> None:
    policy = UnscorablePolicy(Unscorable.FILL, fill_values={"plan": "basic", "region": None})

    with pytest.raises(ValueError, match=r"lack the model's features \['tenure_months', 'monthly_charges'"):
        policy.check_features(FEATURES)
    with pytest.raises(ValueError, match=r"null for \['region'\]"):
        UnscorablePolicy(Unscorable.FILL, fill_values={**FILL, "region": None}).check_features(FEATURES)
    UnscorablePolicy(Unscorable.FILL, fill_values=FILL).check_features(FEATURES)
    UnscorablePolicy().check_features(FEATURES)  # drop needs none


def test_the_drop_cap_counts_over_all_rows() -> None:
    policy = UnscorablePolicy(max_fraction=0.05)
    policy.enforce(5, 100)
    with pytest.raises(UnscorableError, match=r"6 of 100 rows \(6.00%\) are unscorable.*at most 5.00%"):
        policy.enforce(6, 100)
    UnscorablePolicy(Unscorable.FILL, fill_values=FILL).enforce(100, 100)  # no cap but drop's


def test_a_row_missing_any_feature_is_unscorable(rows: pd.DataFrame) -> None:
    mask = unscorable_rows(with_holes(rows), FEATURES)

    assert np.flatnonzero(mask).tolist() == [3, 7, 11, 15]
    with pytest.raises(ValueError, match=r"lack the model's feature columns \['plan'\]"):
        unscorable_rows(rows.drop(columns="plan"), FEATURES)


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, pd.NaT])
@pytest.mark.parametrize("dtype", [object, "string", "category"])
def test_every_kind_of_missing_category_is_unscorable(rows: pd.DataFrame, missing: object, dtype: object) -> None:
    frame = rows.astype({"plan": object})
    frame.loc[5, "plan"] = missing
    frame["plan"] = frame["plan"].astype(dtype)
    assert np.flatnonzero(unscorable_rows(frame, FEATURES)).tolist() == [5]
    assert not unscorable_rows(rows.astype({"plan": dtype}), FEATURES).any()  # only strings: none missing


def test_values_are_typed_as_the_signature_takes_them(rows: pd.DataFrame, inputs: ModelInputs) -> None:
    served = rows.astype({"tenure_months": "float64", "usage_gb": "int64"})  # as a store with nulls serves them

    typed = model_frame(served, inputs)

    assert list(typed.columns) == list(FEATURES)
    assert typed["tenure_months"].dtype == np.int64 and typed["usage_gb"].dtype == np.float64
    pd.testing.assert_series_equal(typed["tenure_months"], rows["tenure_months"])
    with pytest.raises(ValueError, match="'tenure_months' must hold whole numbers"):
        model_frame(served.assign(tenure_months=served["tenure_months"] + 0.5), inputs)


def test_predict_is_the_models_prediction_on_its_inputs(rows: pd.DataFrame, model: NetworkModel, inputs: ModelInputs):
    np.testing.assert_array_equal(predict(model, rows, inputs), expected(model, rows))
    assert predict(model, rows.head(0), inputs).shape == (0,)


def test_drop_leaves_unscorable_rows_out_and_names_them(
    rows: pd.DataFrame, model: NetworkModel, inputs: ModelInputs
) -> None:
    done = score_chunk(model, with_holes(rows), inputs, UnscorablePolicy(), ["customer_id"])

    kept = rows.drop(index=[3, 7, 11, 15]).reset_index(drop=True)
    assert done.unscorable == 4 and len(done.rows) == len(rows) - 4
    assert done.rows["customer_id"].tolist() == kept["customer_id"].tolist()
    np.testing.assert_array_equal(done.predictions, expected(model, kept))
    assert done.examples == tuple(f"customer_id={rows.loc[i, 'customer_id']}" for i in (3, 7, 11))


def test_fill_scores_unscorable_rows_with_the_fill_values(
    rows: pd.DataFrame, model: NetworkModel, inputs: ModelInputs
) -> None:
    policy = UnscorablePolicy(Unscorable.FILL, fill_values=FILL)

    done = score_chunk(model, with_holes(rows), inputs, policy, ["customer_id"])

    filled = rows.copy()
    filled.loc[3, "tenure_months"] = 12
    filled.loc[7, "usage_gb"] = 20.0
    filled.loc[11, "plan"] = "basic"
    filled.loc[15, list(FEATURES)] = list(FILL.values())
    assert done.unscorable == 4 and len(done.rows) == len(rows)
    np.testing.assert_array_equal(done.predictions, expected(model, filled.astype(rows.dtypes.to_dict())))


def test_fail_refuses_a_chunk_with_an_unscorable_row_naming_three(
    rows: pd.DataFrame, model: NetworkModel, inputs: ModelInputs
) -> None:
    model.calls.clear()
    ids = [rows.loc[i, "customer_id"] for i in (3, 7, 11)]

    with pytest.raises(UnscorableError, match=r"4 of 200 rows .*e\.g\. " + ", ".join(f"customer_id={i}" for i in ids)):
        score_chunk(model, with_holes(rows), inputs, UnscorablePolicy(Unscorable.FAIL), ["customer_id"])
    assert model.calls == []  # refused before scoring
