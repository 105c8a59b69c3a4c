"""BatchInferenceOperator against a real MLflow server, real trained torch models and a real Feast repo.

Two versions of a model are trained by the bundled trainer (in this process, one short epoch each) and
registered; the tests move the champion alias between them as a promotion would.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import (
    CHAMPION,
    InferenceResult,
    PredictionColumn,
    ProblemType,
    Unscorable,
    predictions_asset,
)
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.operators.features import FeatureIngestionOperator
from airflow_mlops_provider.operators.inference import BatchInferenceOperator
from airflow_mlops_provider.training.options import TrainConfig
from airflow_mlops_provider.training.trainer import run_training
from demo import data as demo_data
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.s3_server import S3Server, set_storage_connection

pytestmark = pytest.mark.integration
MODEL = "churn_inference_it"
KEYS = [demo_data.ENTITY]
FEATURES = [*demo_data.FEATURES_NUMERIC, *demo_data.FEATURES_CATEGORICAL]
FILL = {"tenure_months": 12, "monthly_charges": 50.0, "support_calls": 0, "usage_gb": 20.0, "plan": "basic",
        "region": "north"}  # fmt: skip
T0 = pd.Timestamp("2026-03-01T00:00Z")
Context = Callable[..., dict[str, Any]]


class OutletEvents(dict[Any, SimpleNamespace]):
    """Stand-in for ``context["outlet_events"]``: an accessor with an ``extra`` dict per asset."""

    def __missing__(self, asset: Any) -> SimpleNamespace:
        self[asset] = SimpleNamespace(extra={})
        return self[asset]


@pytest.fixture(scope="module")
def versions(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two registered versions of :data:`MODEL`, trained with other seeds (so they predict differently)."""
    root = tmp_path_factory.mktemp("training")
    data = str(root / "train.parquet")
    write_dataset(demo_data.assign_splits(demo_data.generate_batch(600, "2026-01-01", days=7, seed=3)), data)
    client = MlflowClient(mlflow_server.tracking_uri)
    experiment = client.create_experiment(MODEL)
    made = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
        for seed in (1, 2):
            run_id = client.create_run(experiment).info.run_id
            config = TrainConfig(
                data_uri=data, target=demo_data.TARGET, problem_type=ProblemType.BINARY,
                numeric_features=tuple(demo_data.FEATURES_NUMERIC),
                categorical_features=tuple(demo_data.FEATURES_CATEGORICAL),
                epochs=1, hidden_sizes=(8,), seed=seed, device="cpu", cpu_threads=1,
            )  # fmt: skip
            summary = run_training(config, run_id)
            made.append(str(mlflow.register_model(summary["model_uri"], MODEL).version))
    return made


@pytest.fixture
def client(mlflow_connection: str) -> MlflowClient:
    return MlflowClient(mlflow_connection)


@pytest.fixture
def context(task_context: Context) -> Iterator[Context]:
    yield lambda run_id="manual__1": {**task_context("score", run_id), "outlet_events": OutletEvents()}


def score(context: dict[str, Any], **kwargs: Any) -> InferenceResult:
    settings = {"model_name": MODEL, "outlets": [predictions_asset(MODEL)], **kwargs}
    return BatchInferenceOperator(task_id="score", **settings).execute(context)


def pyfunc_predict(version: str, rows: pd.DataFrame) -> np.ndarray:
    """The registered model's own predictions, straight from ``mlflow.pyfunc``."""
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    return np.asarray(model.predict(rows[FEATURES].reset_index(drop=True)), dtype=np.float64)


@pytest.fixture
def rows(tmp_path: Path) -> tuple[pd.DataFrame, str]:
    """320 rows with features and a label (a multiple of 16, so a direct ``predict`` on them has no partial
    block: see ``core.inference.scoring.ROW_BLOCK``), written as parquet."""
    frame = demo_data.generate_batch(320, T0, seed=11)
    uri = str(tmp_path / "features.parquet")
    write_dataset(frame, uri)
    return frame, uri


def test_offline_predictions_are_the_champions_pyfunc_predictions(
    client: MlflowClient, versions: list[str], context: Context, rows: tuple[pd.DataFrame, str], tmp_path: Path
) -> None:
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    frame, uri = rows
    ctx = context()
    out = str(tmp_path / "predictions.parquet")

    result = score(ctx, features_uri=uri, entity_columns=KEYS, predictions_uri=out)

    written = pd.read_parquet(out)
    predicted = [PredictionColumn.PREDICTION, PredictionColumn.MODEL_VERSION, PredictionColumn.SCORED_AT]
    assert list(written.columns) == [*KEYS, "event_timestamp", *predicted]
    np.testing.assert_array_equal(written[PredictionColumn.PREDICTION].to_numpy(), pyfunc_predict(versions[0], frame))
    assert written[KEYS].equals(frame[KEYS]) and written["event_timestamp"].equals(frame["event_timestamp"])
    assert set(written[PredictionColumn.MODEL_VERSION]) == {versions[0]}
    assert set(written[PredictionColumn.SCORED_AT]) == {result["scored_at"]}
    assert set(result) == set(InferenceResult.__annotations__)
    assert {k: result[k] for k in ("model_name", "version", "predictions_uri", "rows", "scored", "unscorable")} == {
        "model_name": MODEL, "version": versions[0], "predictions_uri": out, "rows": 320, "scored": 320,
        "unscorable": 0,
    }  # fmt: skip
    values = written[PredictionColumn.PREDICTION].to_numpy()
    assert result["statistics"] == pytest.approx(
        {
            "count": 320,
            "mean": values.mean(),
            "std": values.std(),
            "min": values.min(),
            "p50": np.median(values),
            "max": values.max(),
            "positive_rate": (values >= 0.5).mean(),
        }
    )
    assert ctx["outlet_events"][predictions_asset(MODEL)].extra == {
        "model_name": MODEL, "version": versions[0], "rows": 320, "predictions_uri": out,
    }  # fmt: skip
    link = ctx["ti"].xcom[MlflowModelVersionLink().xcom_key]
    assert link.endswith(f"/#/models/{MODEL}/versions/{versions[0]}")


def test_a_promotion_between_two_runs_changes_the_scoring_version(
    client: MlflowClient, versions: list[str], context: Context, rows: tuple[pd.DataFrame, str], tmp_path: Path
) -> None:
    frame, uri = rows
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    first = score(context("run_1"), features_uri=uri, entity_columns=KEYS, predictions_uri=str(tmp_path / "1.parquet"))
    client.set_registered_model_alias(MODEL, CHAMPION, versions[1])
    second = score(context("run_2"), features_uri=uri, entity_columns=KEYS)

    assert (first["version"], second["version"]) == (versions[0], versions[1])
    written = pd.read_parquet(second["predictions_uri"])
    assert second["predictions_uri"].endswith(f"/predictions/{MODEL}/run_2.parquet")  # the default: one per run
    assert set(written[PredictionColumn.MODEL_VERSION]) == {versions[1]}
    np.testing.assert_array_equal(written[PredictionColumn.PREDICTION].to_numpy(), pyfunc_predict(versions[1], frame))
    before = pd.read_parquet(first["predictions_uri"])[PredictionColumn.PREDICTION].to_numpy()
    assert not np.array_equal(before, written[PredictionColumn.PREDICTION].to_numpy())


def test_chunked_scoring_writes_what_unchunked_scoring_writes(
    client: MlflowClient, versions: list[str], context: Context, rows: tuple[pd.DataFrame, str], tmp_path: Path
) -> None:
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    frame, _ = rows
    holes = frame.head(301).astype({"tenure_months": "float64"})  # 301 rows: the last chunk is partial either way
    holes.loc[[5, 77, 200], "tenure_months"] = np.nan
    uri = str(tmp_path / "holes.parquet")
    write_dataset(holes, uri)

    small = score(context(), features_uri=uri, entity_columns=KEYS, chunk_rows=7,
                  predictions_uri=str(tmp_path / "small.parquet"))  # fmt: skip
    whole = score(context(), features_uri=uri, entity_columns=KEYS, chunk_rows=10_000,
                  predictions_uri=str(tmp_path / "whole.parquet"))  # fmt: skip

    assert pq.ParquetFile(tmp_path / "small.parquet").num_row_groups == 43  # ceil(301 / 7) chunks
    columns = [*KEYS, "event_timestamp", PredictionColumn.PREDICTION, PredictionColumn.MODEL_VERSION]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "small.parquet", columns=columns),
        pd.read_parquet(tmp_path / "whole.parquet", columns=columns),
    )
    assert (small["scored"], small["unscorable"]) == (whole["scored"], whole["unscorable"]) == (298, 3)
    assert small["statistics"] == whole["statistics"]


@pytest.fixture
def with_unknowns(rows: tuple[pd.DataFrame, str], tmp_path: Path) -> tuple[pd.DataFrame, str]:
    """The rows with 8 more whose features are all missing (as for entities the store does not know)."""
    frame, _ = rows
    unknown = frame.head(8).assign(customer_id=np.arange(1, 9))
    unknown[FEATURES] = None
    both = pd.concat([frame, unknown], ignore_index=True).astype(frame.dtypes.drop(FEATURES).to_dict())
    uri = str(tmp_path / "with_unknowns.parquet")
    write_dataset(both, uri)
    return both, uri


def test_unscorable_rows_are_dropped_up_to_the_cap_or_filled_or_fail_before_anything_is_written(
    client: MlflowClient,
    versions: list[str],
    context: Context,
    with_unknowns: tuple[pd.DataFrame, str],
    tmp_path: Path,
) -> None:
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    frame, uri = with_unknowns
    out = tmp_path / "out.parquet"
    offline = {"features_uri": uri, "entity_columns": KEYS, "predictions_uri": str(out)}

    dropped = score(context(), **offline)  # 8 of 328 rows: 2.4% <= 5%
    assert (dropped["rows"], dropped["scored"], dropped["unscorable"]) == (328, 320, 8)
    assert dropped["unscorable_policy"] == Unscorable.DROP
    np.testing.assert_array_equal(
        pd.read_parquet(out)[PredictionColumn.PREDICTION].to_numpy(), pyfunc_predict(versions[0], frame.head(320))
    )
    out.unlink()

    with pytest.raises(AirflowFailException, match=r"8 of 328 rows \(2.44%\) are unscorable.*at most 1.00%"):
        score(context(), max_unscorable_fraction=0.01, **offline)
    with pytest.raises(AirflowFailException, match=r"unscorable='fail' allows none") as failed:
        score(context(), unscorable=Unscorable.FAIL, **offline)
    assert "e.g. customer_id=1, customer_id=2, customer_id=3;" in str(failed.value)
    with pytest.raises(AirflowFailException, match=r"fill_values lack the model's features \['monthly_charges'"):
        score(context(), unscorable=Unscorable.FILL, fill_values={"tenure_months": 1}, **offline)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []

    filled = score(context(), unscorable=Unscorable.FILL, fill_values=FILL, **offline)
    assert (filled["scored"], filled["unscorable"]) == (328, 8)
    expected = frame.copy()
    expected.loc[320:, FEATURES] = list(FILL.values())
    expected = expected.astype({"tenure_months": "int64", "support_calls": "int64"})
    np.testing.assert_array_equal(
        pd.read_parquet(out)[PredictionColumn.PREDICTION].to_numpy()[:320], pyfunc_predict(versions[0], frame.head(320))
    )
    np.testing.assert_array_equal(
        pd.read_parquet(out)[PredictionColumn.PREDICTION].to_numpy()[320:],
        # The 8 filled rows twice: 16 rows, a whole block (core.inference.scoring.ROW_BLOCK).
        pyfunc_predict(versions[0], pd.concat([expected.tail(8)] * 2, ignore_index=True))[:8],
    )


def test_no_champion_fails_or_skips_and_no_rows_in_the_window_skips(
    client: MlflowClient, versions: list[str], context: Context, rows: tuple[pd.DataFrame, str]
) -> None:
    _, uri = rows
    with pytest.raises(AirflowFailException, match=r"model 'no_such_model' has no version aliased 'champion'"):
        score(context(), model_name="no_such_model", features_uri=uri, entity_columns=KEYS)
    with pytest.raises(AirflowSkipException, match=r"No model to score with yet: .*no version aliased 'champion'"):
        score(context(), model_name="no_such_model", features_uri=uri, entity_columns=KEYS, skip_without_version=True)
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    ctx = context()
    with pytest.raises(AirflowSkipException, match="Nothing to score"):
        score(ctx, features_uri=uri, entity_columns=KEYS, window_start="2030-01-01T00:00:00Z")
    assert predictions_asset(MODEL) not in ctx["outlet_events"]


def test_entities_are_scored_with_online_features_from_feast(
    feast_repo: Path,
    client: MlflowClient,
    versions: list[str],
    context: Context,
    tmp_path: Path,
) -> None:
    client.set_registered_model_alias(MODEL, CHAMPION, versions[1])
    batch = demo_data.generate_batch(160, T0, seed=21)
    batch.to_parquet(tmp_path / "batch.parquet")
    FeatureIngestionOperator(task_id="ingest", feature_view="customer_stats", batch_uri=str(tmp_path / "batch.parquet")
                             ).execute(context())  # fmt: skip
    # The spine as ingestion archives it (label included), plus 4 customers the store does not know, and rows
    # outside the window.
    spine = batch[[*KEYS, "event_timestamp", demo_data.TARGET]]
    unknown = spine.head(4).assign(customer_id=[1, 2, 3, 4])
    late = spine.head(10).assign(event_timestamp=T0 + pd.Timedelta(days=5))
    entities = tmp_path / "entities"
    entities.mkdir()
    pd.concat([spine, unknown], ignore_index=True).to_parquet(entities / "a.parquet")
    late.to_parquet(entities / "b.parquet")
    window = {"window_start": T0.isoformat(), "window_end": (T0 + pd.Timedelta(days=2)).isoformat()}
    online = {"entities_uri": f"{entities}/", "feature_service": "churn_v1", "chunk_rows": 50, **window}

    result = score(context(), predictions_uri=str(tmp_path / "online.parquet"), **online)

    written = pd.read_parquet(tmp_path / "online.parquet")
    assert (result["rows"], result["scored"], result["unscorable"]) == (164, 160, 4)
    assert written[KEYS].equals(batch[KEYS]) and set(written[PredictionColumn.MODEL_VERSION]) == {versions[1]}
    np.testing.assert_array_equal(written[PredictionColumn.PREDICTION].to_numpy(), pyfunc_predict(versions[1], batch))
    assert demo_data.TARGET not in written.columns
    with pytest.raises(AirflowFailException, match=r"e\.g\. customer_id=1, customer_id=2, customer_id=3;"):
        score(context(), unscorable=Unscorable.FAIL, **online)
    with pytest.raises(AirflowFailException, match="feature service 'probe_service' does not serve"):
        score(context(), **{**online, "feature_service": "probe_service"})


def test_predictions_go_to_s3_through_the_storage_connection(
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    client: MlflowClient,
    versions: list[str],
    context: Context,
    rows: tuple[pd.DataFrame, str],
) -> None:
    set_storage_connection(monkeypatch, "mlops_s3_default", s3_server.config)
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    frame, _ = rows
    store = ObjectStore(s3_server.config)
    source = f"{s3_bucket}/features/rows.parquet"
    write_dataset(frame, source, store)
    out = f"{s3_bucket}/predictions/{MODEL}/run.parquet"

    result = score(context(), features_uri=source, entity_columns=KEYS, predictions_uri=out, chunk_rows=100)

    assert result["predictions_uri"] == out and store.list(f"{s3_bucket}/predictions/") == [out]
    written = pd.read_parquet(io.BytesIO(store.read_bytes(out)))
    np.testing.assert_array_equal(written[PredictionColumn.PREDICTION].to_numpy(), pyfunc_predict(versions[0], frame))
    assert json.loads(json.dumps(result)) == result  # an XCom value
