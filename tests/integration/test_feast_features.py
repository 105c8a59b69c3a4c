"""Ingestion and training sets against a real Feast repo (local provider, file offline, sqlite online store)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops_provider.contracts import feature_view_asset
from airflow_mlops_provider.core.features.feast_repo import open_store
from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.operators.features import FeatureIngestionOperator, TrainingDatasetOperator
from airflow_mlops_provider.training.data import load_dataset, split_dataset
from airflow_mlops_provider.training.options import TrainConfig
from demo import data as demo_data
from tests.fixtures.s3_server import S3Server

pytestmark = pytest.mark.integration
FEATURES = [*demo_data.FEATURES_NUMERIC, *demo_data.FEATURES_CATEGORICAL]
T0 = pd.Timestamp("2024-05-01T00:00Z")
PROBE_TTL = pd.Timedelta(hours=6)
Context = Callable[[], dict[str, Any]]


class OutletEvents(dict[Any, SimpleNamespace]):
    """Stand-in for ``context["outlet_events"]``: an accessor with an ``extra`` dict per asset."""

    def __missing__(self, asset: Any) -> SimpleNamespace:
        self[asset] = SimpleNamespace(extra={})
        return self[asset]


@pytest.fixture
def context(task_context: Callable[..., dict[str, Any]]) -> Context:
    return lambda: {**task_context("features"), "outlet_events": OutletEvents()}


def ingest(context: Context, uri: str, view: str = "customer_stats") -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the ingestion operator; return its result and the extra of its asset event."""
    ctx = context()
    result = FeatureIngestionOperator(task_id="ingest", feature_view=view, batch_uri=uri).execute(ctx)
    return result, ctx["outlet_events"][feature_view_asset(view)].extra


def offline_rows(repo: Path, view: str = "customer_stats") -> pd.DataFrame:
    parts = sorted((repo / "data" / "offline" / view).glob("*.parquet"))
    frame = pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
    return frame.sort_values(["customer_id", "event_timestamp"], ignore_index=True)


def online_values(repo: Path, ids: list[int]) -> pd.DataFrame:
    response = open_store(str(repo)).get_online_features(
        features=[f"customer_stats:{name}" for name in FEATURES], entity_rows=[{"customer_id": i} for i in ids]
    )
    return response.to_df()[["customer_id", *FEATURES]]


def later_values_for(batch: pd.DataFrame, seed: int) -> pd.DataFrame:
    """New snapshots of the same customers, a day later, with other feature values."""
    newer = demo_data.generate_batch(len(batch), T0 + pd.Timedelta(days=3), seed=seed)
    return newer.assign(customer_id=batch["customer_id"].to_numpy())


def test_reingesting_batches_changes_nothing(feast_repo: Path, tmp_path: Path, context: Context) -> None:
    first = demo_data.generate_batch(300, T0, seed=1)
    first.to_parquet(tmp_path / "first.parquet")
    csv = demo_data.generate_batch(200, T0 + pd.Timedelta(days=1), seed=2)
    csv.assign(event_timestamp=csv["event_timestamp"].map(pd.Timestamp.isoformat)).to_csv(tmp_path / "second.csv")
    update = later_values_for(first, seed=3)
    update.to_parquet(tmp_path / "update.parquet")
    for name in ("first.parquet", "second.csv", "update.parquet"):
        ingest(context, str(tmp_path / name))
    ids = [*first["customer_id"], *csv["customer_id"]]
    offline, online = offline_rows(feast_repo), online_values(feast_repo, ids)

    result, event = ingest(context, str(tmp_path / "first.parquet"))  # an older batch, again
    ingest(context, str(tmp_path / "second.csv"))

    pd.testing.assert_frame_equal(offline_rows(feast_repo), offline)
    pd.testing.assert_frame_equal(online_values(feast_repo, ids), online)
    assert len(offline) == 800
    parts = sorted(p.name for p in (feast_repo / "data/offline/customer_stats").iterdir())
    assert parts == ["part-first.parquet", "part-second.parquet", "part-update.parquet"]
    assert event == {"batch_id": "first", "rows": 300}
    assert result["part_uri"] == f"{feast_repo}/data/offline/customer_stats/part-first.parquet"
    assert result["start"] == first["event_timestamp"].min().isoformat()
    assert result["end"] == update["event_timestamp"].max().isoformat()


def test_online_store_serves_the_latest_values(feast_repo: Path, tmp_path: Path, context: Context) -> None:
    first = demo_data.generate_batch(100, T0, seed=4)
    update = later_values_for(first, seed=5)
    for name, frame in (("update", update), ("first", first)):  # the newer batch lands first
        frame.to_parquet(tmp_path / f"{name}.parquet")
        ingest(context, str(tmp_path / f"{name}.parquet"))
    served = online_values(feast_repo, first["customer_id"].tolist())
    pd.testing.assert_frame_equal(served, update[["customer_id", *FEATURES]], check_dtype=False)


def _spoil(name: str, batch: pd.DataFrame, path: Path) -> tuple[str, str]:
    """Write a bad variant of ``batch``; return its URI and the feature view to ingest it into."""
    uri, view = str(path / f"{name}.parquet"), "customer_stats"
    if name == "missing_column":
        batch = batch.drop(columns=["usage_gb"])
    elif name == "wrong_dtype":
        batch = batch.assign(support_calls=batch["support_calls"].astype(str))
    elif name == "null_entity":
        batch = batch.assign(customer_id=batch["customer_id"].astype("Int64").mask(batch.index == 7))
    elif name == "naive_timestamps":
        uri = str(path / f"{name}.csv")
        batch.assign(event_timestamp=batch["event_timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(uri)
        return uri, view
    elif name == "empty_file":
        batch = batch.iloc[:0]
    elif name == "unreadable_file":
        Path(uri).write_bytes(b"PAR1 but not really")
        return uri, view
    elif name == "unknown_view":
        view = "customer_stats_v9"
    batch.to_parquet(uri)
    return uri, view


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing_column", r"missing columns \['usage_gb'\]"),
        ("wrong_dtype", r"column 'support_calls' has dtype object, expected Int64"),
        ("null_entity", r"entity column 'customer_id' has 1 null values"),
        ("naive_timestamps", r"'event_timestamp' holds naive timestamps"),
        ("empty_file", r"empty_file\.parquet has no rows"),
        ("unreadable_file", r"cannot read batch .*unreadable_file\.parquet"),
        ("unknown_view", r"feature view 'customer_stats_v9' is not registered .*\['customer_stats', 'probe'\]"),
    ],
)
def test_a_bad_batch_fails_clearly_and_writes_nothing(
    feast_repo: Path, tmp_path: Path, context: Context, name: str, message: str
) -> None:
    batch = demo_data.generate_batch(40, T0, seed=6)
    uri, view = _spoil(name, batch, tmp_path)
    with pytest.raises(AirflowFailException, match=rf"^Batch {uri} not ingested: .*{message}"):
        ingest(context, uri, view)
    assert not (feast_repo / "data" / "offline").exists()
    assert online_values(feast_repo, batch["customer_id"].tolist())[FEATURES].isna().all().all()


def test_a_csv_batch_on_s3_is_ingested(
    feast_repo: Path, context: Context, s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_server.config.to_env().items():
        monkeypatch.setenv(key, value)
    batch = demo_data.generate_batch(60, T0, seed=7)
    ObjectStore(s3_server.config).write_bytes(f"{s3_bucket}/landing/b7.csv", batch.to_csv(index=False).encode())
    result, event = ingest(context, f"{s3_bucket}/landing/b7.csv")
    assert (result["batch_id"], event) == ("b7", {"batch_id": "b7", "rows": 60})
    pd.testing.assert_frame_equal(offline_rows(feast_repo), batch.drop(columns=[demo_data.TARGET]), check_dtype=False)


@pytest.fixture
def probe(feast_repo: Path, tmp_path: Path, context: Context) -> tuple[pd.DataFrame, str]:
    """Random probe rows (ingested as three daily batches) and a shuffled spine with duplicates; returns
    the probe rows and the spine's URI."""
    rng = np.random.default_rng(11)
    rows = []
    for customer in range(1, 31):
        offsets = np.unique(rng.integers(0, 3 * 86_400_000, rng.integers(0, 12)))
        rows.append(pd.DataFrame({"customer_id": customer, "ms": offsets}))
    features = pd.concat(rows, ignore_index=True)
    features["event_timestamp"] = T0 + pd.to_timedelta(features.pop("ms"), unit="ms")
    features["value"] = rng.normal(size=len(features))
    features["observed_ms"] = features["event_timestamp"].astype("int64") // 1_000_000
    for day, batch in features.groupby(features["event_timestamp"].dt.day):
        batch.to_parquet(tmp_path / f"probe-{day}.parquet")
        ingest(context, str(tmp_path / f"probe-{day}.parquet"), view="probe")

    span_ms = (3 * 24 + 10) * 3_600_000
    spine = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 35, 500),  # 31..34 have no feature rows at all
            "event_timestamp": T0 - pd.Timedelta(hours=2) + pd.to_timedelta(rng.integers(0, span_ms, 500), unit="ms"),
            "label": rng.integers(0, 2, 500),
        }
    )
    exact = features.sample(20, random_state=1)[["customer_id", "event_timestamp"]].assign(label=1)
    twins = spine.sample(20, random_state=2).assign(label=lambda df: 1 - df["label"])
    spine = pd.concat([spine, exact, twins], ignore_index=True).sample(frac=1, random_state=3, ignore_index=True)
    spine.to_parquet(tmp_path / "spine.parquet")
    return features, str(tmp_path / "spine.parquet")


def build(context: Context, spine_uri: str, service: str = "probe_service", **kwargs: Any) -> dict[str, Any]:
    """Run the training-set operator (no split rows held back unless asked)."""
    kwargs = {"label_columns": ["label"], "validation": 0.2, "holdout": 0.2, **kwargs}
    op = TrainingDatasetOperator(task_id="training_set", feature_service=service, spine_uri=spine_uri, **kwargs)
    result: dict[str, Any] = op.execute(context())
    return result


def oracle(spine: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The latest feature row at or before each spine row, within the TTL, by merge_asof; spine order."""
    left = spine.rename_axis("row").reset_index().sort_values("event_timestamp", kind="stable")
    right = features.rename(columns={"event_timestamp": "feature_ts"}).sort_values("feature_ts")
    merged = pd.merge_asof(
        left, right, left_on="event_timestamp", right_on="feature_ts", by="customer_id",
        direction="backward", tolerance=PROBE_TTL, allow_exact_matches=True,
    )  # fmt: skip
    return merged.sort_values("row").drop(columns=["row", "feature_ts"]).reset_index(drop=True)


def test_training_set_is_point_in_time_correct(
    probe: tuple[pd.DataFrame, str], tmp_path: Path, context: Context
) -> None:
    features, spine_uri = probe
    result = build(context, spine_uri, output_uri=str(tmp_path / "set.parquet"), max_missing_fraction=1.0)
    built = read_dataset(result["uri"])

    expected = oracle(pd.read_parquet(spine_uri), features)
    kept = expected.dropna(subset=["value"]).reset_index(drop=True)
    columns = ["customer_id", "event_timestamp", "label", "value", "observed_ms"]
    pd.testing.assert_frame_equal(built[columns], kept[columns], check_dtype=False)
    spine_ms = built["event_timestamp"].astype("int64") // 1_000_000
    assert (built["observed_ms"] <= spine_ms).all(), "a feature value from after the spine time leaked in"
    assert (built["observed_ms"] >= spine_ms - PROBE_TTL.value // 1_000_000).all()
    missing = len(expected) - len(kept)
    assert 50 < missing < 400 and result["dropped"] == result["missing"] == missing
    assert result["rows"] == len(built) and result["digest"] == dataset_digest(built)
    assert built["split"].value_counts().to_dict() == {
        "train": len(built) - 2 * round(0.2 * len(built)),
        "validation": round(0.2 * len(built)),
        "holdout": round(0.2 * len(built)),
    }


def test_a_split_policy_writes_the_split_column_the_trainer_reads(
    probe: tuple[pd.DataFrame, str], tmp_path: Path, context: Context
) -> None:
    policy = SplitPolicy.random_by(seed=0, validation=0.2, holdout=0.2, stratify=True, column="fold")
    output = str(tmp_path / "set.parquet")
    result = build(context, probe[1], output_uri=output, max_missing_fraction=1.0, split=policy)
    built = read_dataset(result["uri"])
    assert result["digest"] == dataset_digest(built)
    expected = policy.apply(built.drop(columns="fold"), "label")
    pd.testing.assert_series_equal(built["fold"], expected["fold"])  # the same split code as the trainer's
    shares = built.groupby("fold")["label"].mean()
    assert (shares - built["label"].mean()).abs().max() < 0.02  # stratified
    per_class = built["label"].value_counts()  # each class is split on its own
    held = sum(round(0.2 * n) for n in per_class)
    assert built["fold"].value_counts().to_dict() == {
        "train": len(built) - 2 * held,
        "validation": held,
        "holdout": held,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": SplitPolicy.existing()}, r"assigns the rows \(temporal_by or random_by\), not \{"),
        ({"split": "random"}, "not str"),
        ({"split": SplitPolicy.random_by(stratify=True), "label_columns": ["a", "b"]}, "exactly one label column"),
        ({"validation": 0.6, "holdout": 0.5}, "with a sum < 1"),
    ],
)
def test_a_bad_split_is_refused_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingDatasetOperator(
            task_id="training_set", feature_service="s", spine_uri="spine/", **{"label_columns": ["y"], **kwargs}
        )


def test_the_default_split_is_temporal_on_the_timestamp_column() -> None:
    op = TrainingDatasetOperator(
        task_id="t", feature_service="s", spine_uri="spine/", label_columns=["y"], timestamp_column="ts", holdout=0.3
    )
    assert op.split == SplitPolicy.temporal_by("ts", 0.15, 0.3)


def test_fill_keeps_every_spine_row(probe: tuple[pd.DataFrame, str], context: Context) -> None:
    features, spine_uri = probe
    fill = {"value": -99.0}
    result = build(context, spine_uri, missing_features="fill", max_missing_fraction=0.9, fill_values=fill)
    built = read_dataset(result["uri"])
    expected = oracle(pd.read_parquet(spine_uri), features).fillna({"value": -99.0, "observed_ms": 0})
    pd.testing.assert_frame_equal(built[expected.columns], expected, check_dtype=False)
    assert built["observed_ms"].dtype == np.int64
    assert result["filled"] == result["missing"] > 0 and result["dropped"] == 0


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"missing_features": "fail"}, r"spine rows \(.*%\) have no feature row within the TTL.*allows none"),
        ({"missing_features": "drop", "max_missing_fraction": 0.2}, r"policy 'drop' allows at most 20\.00%"),
        ({"missing_features": "skip"}, r"missing-features action must be one of"),
    ],
)
def test_policies_fail_instead_of_losing_rows(
    probe: tuple[pd.DataFrame, str], tmp_path: Path, context: Context, policy: dict[str, Any], message: str
) -> None:
    output = tmp_path / "refused.parquet"
    with pytest.raises(AirflowFailException, match=message):
        build(context, probe[1], output_uri=str(output), **policy)
    assert not output.exists()


def test_demo_training_set_is_what_the_trainer_reads(
    feast_repo: Path, tmp_path: Path, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_DIR", str(tmp_path / "data"))
    landing = tmp_path / "ingested"
    for day in range(3):
        batch = demo_data.generate_batch(400, T0 + pd.Timedelta(days=day), seed=day)
        landing.mkdir(exist_ok=True)
        batch.to_parquet(landing / f"day-{day}.parquet")
        ingest(context, str(landing / f"day-{day}.parquet"))
    result = build(
        context, f"{landing}/", service="churn_v1", label_columns=[demo_data.TARGET],
        window_start="2024-05-02T00:00:00+00:00", window_end="2024-05-04T00:00:00+00:00", missing_features="fail",
    )  # fmt: skip
    assert result["window"] == "2024-05-02T00:00:00+00:00/2024-05-04T00:00:00+00:00"
    assert (result["rows"], result["dropped"], result["feature_service"]) == (800, 0, "churn_v1")
    assert result["uri"] == f"{tmp_path}/data/training_sets/churn_v1/manual__1.parquet"

    loaded = load_dataset(result["uri"])
    assert dataset_digest(loaded) == result["digest"]  # the digest the trainer logs as its dataset input
    config = TrainConfig(
        data_uri=result["uri"],
        target=demo_data.TARGET,
        problem_type="binary",
        numeric_features=tuple(demo_data.FEATURES_NUMERIC),
        categorical_features=tuple(demo_data.FEATURES_CATEGORICAL),
    )
    splits = split_dataset(loaded, config)
    assert (len(splits.train), len(splits.validation)) == (480, 160)
    assert (
        splits.holdout is not None and splits.holdout["event_timestamp"].min() >= splits.train["event_timestamp"].max()
    )
