"""ModelQualityOperator against a real MLflow server: a registered, promoted champion whose holdout score
(recorded by PromoteModelOperator) sets the floor, the series stored and charted as MLflow metrics, and the
decay event once per episode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors
from mlflow import MlflowClient

from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.links.mlflow import MlflowModelVersionLink
from airflow_mlops_provider.operators.quality import ModelQualityOperator
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from tests.reliability.registry_models import TARGET, CraftedModel, craft_models

pytestmark = pytest.mark.integration
Context = Callable[..., dict[str, Any]]
DECAY = Asset(name="quality_it_decay", uri="mlops://quality/quality_it/decay", group="model")
DAY1, DAY2 = "2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z"


@pytest.fixture(scope="module")
def crafted(mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, CraftedModel]:
    holdout, (model,) = craft_models(mlflow_server.tracking_uri, tmp_path_factory.mktemp("quality"), [0.8], seed=5)
    return holdout, model


def champion(name: str, crafted: tuple[str, CraftedModel], context: Context) -> CraftedModel:
    """Register the crafted model and promote it: promotion records its holdout AUC on the version."""
    holdout, model = crafted
    RegisterModelOperator(task_id="register", model_name=name, mlflow_run_id=model.mlflow_run_id).execute(
        context("register")
    )
    record = PromoteModelOperator(
        task_id="promote", model_name=name, version="1", holdout_uri=holdout, target=TARGET
    ).execute(context("promote"))
    assert record["promote"] and record["challenger_score"] == pytest.approx(model.auc)
    return model


def frame(rows: list[tuple[str, str, float]], **columns: object) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows], "value": [r[2] for r in rows]}
    ).assign(**columns)


def write_predictions(root: Path, name: str, rows: list[tuple[str, str, float]]) -> None:
    scored = frame(rows, model_version="1", scored_at="2026-01-03T00:00:00+00:00").rename(
        columns={"value": "prediction"}
    )
    scored["event_timestamp"] = pd.to_datetime(scored["event_timestamp"], utc=True)
    write_dataset(scored, str(root / "predictions" / f"{name}.parquet"))


def write_labels(root: Path, name: str, rows: list[tuple[str, str, float]]) -> None:
    write_dataset(frame(rows).rename(columns={"value": "churned"}), str(root / "labels" / f"{name}.csv"))


def check(root: Path, context: dict[str, Any], model: str, **kwargs: Any) -> tuple[ModelQualityOperator, Any]:
    op = ModelQualityOperator(
        task_id="check_quality", model_name=model, entity_columns=["customer_id"], label_column="churned",
        predictions_uri=f"{root}/predictions/", labels_uri=f"{root}/labels/", series_uri=f"{root}/series.parquet",
        state_uri=f"{root}/episodes.json", decay_asset=DECAY, storage_conn_id=None, **kwargs,
    )  # fmt: skip
    context["outlet_events"] = OutletEventAccessors()
    return op, op.execute(context)


def events(op: ModelQualityOperator, context: dict[str, Any]) -> list[Any]:
    assert op.decay_event is not None
    return list(context["outlet_events"][op.decay_event.alias].asset_alias_events)


def test_decay_against_the_promoted_holdout_score_is_stored_charted_and_signalled_once(
    crafted: tuple[str, CraftedModel], mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    model = champion("quality_it", crafted, task_context)
    write_predictions(tmp_path, "run1", [("c1", DAY1, 0.9), ("c2", DAY1, 0.8), ("c3", DAY1, 0.3), ("c4", DAY1, 0.2)])
    write_labels(tmp_path, "b1", [("c1", DAY1, 1), ("c2", DAY1, 0), ("c3", DAY1, 1)])  # c4's label is late

    context = task_context("check_quality", run_id="r1")
    op, result = check(tmp_path, context, "quality_it", max_drop="0.2", min_labels="3")
    # Labelled: (0.9, 1), (0.8, 0), (0.3, 1): one of two positive-negative pairs ranked right: AUC 0.5.
    assert (result["version"], result["value"]) == ("1", 0.5)
    assert result["holdout_score"] == pytest.approx(model.auc) and result["floor"] == pytest.approx(model.auc - 0.2)
    assert result["decayed"] and result["fire"] and result["episode"] == "decay episode started"
    (event,) = events(op, context)
    assert event.dest_asset_key.name == DECAY.name
    assert event.extra == {
        "model_name": "quality_it", "version": "1", "metric": "roc_auc", "value": 0.5,
        "floor": result["floor"], "window": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip
    assert context["ti"].xcom[MlflowModelVersionLink().xcom_key].endswith("/models/quality_it/versions/1")

    client = MlflowClient(mlflow_connection)
    step = int(pd.Timestamp("2026-01-01", tz="UTC").value // pd.Timedelta("1D").value)
    history = client.get_metric_history(model.mlflow_run_id, "live_roc_auc")
    assert [(m.step, m.value) for m in history] == [(step, 0.5)]
    assert [m.value for m in client.get_metric_history(model.mlflow_run_id, "live_label_coverage")] == [0.75]

    # The next run, nothing new: no event, nothing logged again.
    context = task_context("check_quality", run_id="r2")
    op, result = check(tmp_path, context, "quality_it", max_drop="0.2", min_labels="3")
    assert result["decayed"] and not result["fire"] and events(op, context) == []
    assert len(client.get_metric_history(model.mlflow_run_id, "live_roc_auc")) == 1

    # c4's label arrives (AUC 3/4, above the floor), and a good day 2: the episode ends; the series is replaced.
    write_labels(tmp_path, "b2", [("c4", DAY1, 0)])
    write_predictions(tmp_path, "run2", [("c1", DAY2, 0.9), ("c2", DAY2, 0.2), ("c3", DAY2, 0.7)])
    write_labels(tmp_path, "b3", [("c1", DAY2, 1), ("c2", DAY2, 0), ("c3", DAY2, 1)])
    context = task_context("check_quality", run_id="r3")
    op, result = check(tmp_path, context, "quality_it", max_drop="0.2", min_labels="3")
    assert not result["decayed"] and result["value"] == 1.0 and events(op, context) == []
    series = read_dataset(str(tmp_path / "series.parquet"))
    assert list(series["roc_auc"]) == [0.75, 1.0] and list(series["label_coverage"]) == [1.0, 1.0]
    history = client.get_metric_history(model.mlflow_run_id, "live_roc_auc")
    assert sorted((m.step, m.value) for m in history) == [(step, 0.5), (step, 0.75), (step + 1, 1.0)]
    assert client.get_run(model.mlflow_run_id).data.metrics["live_roc_auc"] == 1.0  # the newest window


def test_a_retry_of_the_firing_task_fires_again(
    crafted: tuple[str, CraftedModel], mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    champion("quality_it_retry", crafted, task_context)
    write_predictions(tmp_path, "run1", [("c1", DAY1, 0.9), ("c2", DAY1, 0.8), ("c3", DAY1, 0.3)])
    write_labels(tmp_path, "b1", [("c1", DAY1, 1), ("c2", DAY1, 0), ("c3", DAY1, 1)])
    fired = []
    for run_id, try_number in (("r1", 1), ("r1", 2), ("r2", 1)):
        context = task_context("check_quality", run_id=run_id, try_number=try_number)
        op, _ = check(tmp_path, context, "quality_it_retry", min_value=0.9, min_labels=3)
        fired.append(len(events(op, context)))
    assert fired == [1, 1, 0]


def test_clear_errors_before_anything_is_written(
    crafted: tuple[str, CraftedModel], mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    with pytest.raises(AirflowFailException, match="'quality_it_none' has no version aliased 'champion'"):
        check(tmp_path, task_context("check_quality"), "quality_it_none", min_value=0.5)
    champion("quality_it_errors", crafted, task_context)
    with pytest.raises(AirflowFailException, match="no predictions of 'quality_it_errors'"):
        check(tmp_path, task_context("check_quality"), "quality_it_errors", min_value=0.5)
    write_predictions(tmp_path, "run1", [("c1", DAY1, 0.9)])
    with pytest.raises(AirflowFailException, match=r"Bad quality policy .*min_value must be a finite roc_auc"):
        check(tmp_path, task_context("check_quality"), "quality_it_errors", min_value="1.5")
    with pytest.raises(AirflowFailException, match="does not apply to problem_type 'binary'"):
        check(tmp_path, task_context("check_quality"), "quality_it_errors", metric="rmse", min_value=1)
    with pytest.raises(AirflowFailException, match="max_drop needs the champion's holdout log_loss"):
        check(tmp_path, task_context("check_quality"), "quality_it_errors", metric="log_loss", max_drop=0.1)
    assert not (tmp_path / "series.parquet").exists() and not (tmp_path / "episodes.json").exists()
