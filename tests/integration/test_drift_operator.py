"""DriftCheckOperator against a real MLflow server: the champion's training set as reference, the report
stored and linked, and a drift asset event only when the data drifted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.execution_time.context import OutletEventAccessors
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, RunParam, Split, Tag
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftWindow, EpisodePolicy
from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.operators.registry import RegisterModelOperator
from airflow_mlops_provider.triggers.drift import DriftTrigger
from demo import data as demo_data
from tests.fixtures.drift_data import DriftData, write_drift_data

pytestmark = pytest.mark.integration
MODEL = "churn_drift_it"
FEATURES = ["tenure_months", "monthly_charges", "usage_gb", "plan"]
DRIFT = Asset(name="churn_drift_it", uri="mlops://drift/churn_drift_it", group="drift")
Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def register_champion(
    tracking_uri: str, model: str, dataset_uri: str, digest: str, split: SplitPolicy | None = None
) -> str:
    """A run that records the features (and ``split``) as the trainer does, and a champion version carrying
    lineage tags."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(model) or client.get_experiment(client.create_experiment(model))
    run = client.create_run(experiment.experiment_id)
    params = {
        RunParam.NUMERIC_FEATURES: ",".join(FEATURES[:3]),
        RunParam.CATEGORICAL_FEATURES: FEATURES[3],
        RunParam.TARGET: demo_data.TARGET,
        RunParam.SPLIT_COLUMN: Split.COLUMN,
        **({RunParam.SPLIT_POLICY: split.to_json()} if split else {}),
    }
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{model}'"):
        client.create_registered_model(model)
    version = client.create_model_version(
        model,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={Tag.DATASET_URI: dataset_uri, Tag.DATASET_DIGEST: digest},
    )
    client.set_registered_model_alias(model, CHAMPION, version.version)
    return str(version.version)


def _check(context: dict[str, Any], current_uri: str, tmp_path: Path, **kwargs: Any) -> tuple[DriftCheckOperator, Any]:
    op = DriftCheckOperator(
        task_id="check_drift",
        model_name=MODEL,
        current_uri=current_uri,
        report_prefix=str(tmp_path / "report"),
        drift_asset=DRIFT,
        **kwargs,
    )
    context["outlet_events"] = OutletEventAccessors()
    return op, op.execute(context)


def test_drift_against_the_champion_stores_links_and_signals(
    data: DriftData, mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    version = register_champion(mlflow_connection, MODEL, data.reference, data.reference_digest)
    context = task_context("check_drift")
    op, summary = _check(context, data.drifted, tmp_path)

    assert (summary["model_name"], summary["model_version"]) == (MODEL, version)
    assert [c["column"] for c in summary["columns"]] == FEATURES  # the model's features, from its run
    assert summary["reference_rows"] == 2100  # the training split only
    assert summary["dataset_drift"] and "monthly_charges" in summary["drifted_columns"]
    report = Path(summary["report_uri"])
    assert report == tmp_path / "report" / "drift_report.html" and report.stat().st_size > 0
    assert (tmp_path / "report" / "drift_report.json").exists() and (
        tmp_path / "report" / "drift_summary.json"
    ).exists()
    assert context["ti"].xcom[DriftReportLink().xcom_key] == report.as_uri()

    assert [o.name for o in op.outlets] == ["churn_drift_it__on_drift"]
    (event,) = context["outlet_events"][op.drift_alias].asset_alias_events
    assert event.dest_asset_key.name == DRIFT.name
    assert event.extra["model_name"] == MODEL and event.extra["drifted_columns"] == summary["drifted_columns"]


def test_the_reference_is_the_rows_the_champions_split_policy_trained_on(
    data: DriftData, mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    """A training set without a split column: the champion's run records how it was split."""
    raw = read_dataset(data.reference).drop(columns="split")
    uri = str(tmp_path / "raw.parquet")
    digest = write_dataset(raw, uri)
    policy = SplitPolicy.random_by(seed=0, validation=0.1, holdout=0.2, stratify=True)
    version = register_champion(mlflow_connection, f"{MODEL}_policy", uri, digest, policy)
    context = task_context("check_drift")
    op = DriftCheckOperator(
        task_id="check_drift", model_name=f"{MODEL}_policy", current_uri=data.drifted,
        report_prefix=str(tmp_path / "report"),
    )  # fmt: skip
    context["outlet_events"] = OutletEventAccessors()
    summary = op.execute(context)
    assert summary["model_version"] == version and summary["reference_digest"] == digest
    assert summary["reference_rows"] == len(policy.partition(raw, demo_data.TARGET)["train"]) == 2100
    assert [c["column"] for c in summary["columns"]] == FEATURES  # the split column is not compared
    assert summary["dataset_drift"]


def test_no_drift_no_event_and_only_the_summary(
    data: DriftData, mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    register_champion(mlflow_connection, MODEL, data.reference, data.reference_digest)
    context = task_context("check_drift")
    half_day = DriftWindow("event_timestamp", start="2026-01-08T06:00:00", end="2026-01-08T18:00:00")
    op, summary = _check(context, data.clean, tmp_path, window=half_day)

    assert not summary["dataset_drift"] and summary["drifted_columns"] == []
    assert 0 < summary["current_rows"] < 1500  # the half-day window of a day of rows
    assert summary["report_uri"] == str(tmp_path / "report" / "drift_summary.json")
    assert not (tmp_path / "report" / "drift_report.html").exists()
    assert context["ti"].xcom[DriftReportLink().xcom_key] == Path(summary["report_uri"]).as_uri()
    assert context["outlet_events"][op.drift_alias].asset_alias_events == []


def test_a_changed_training_set_fails_the_check(
    data: DriftData, mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    register_champion(mlflow_connection, f"{MODEL}_tampered", data.reference, "0" * 16)
    op = DriftCheckOperator(task_id="check_drift", model_name=f"{MODEL}_tampered", current_uri=data.clean)
    with pytest.raises(AirflowFailException, match="digest"):
        op.execute(task_context("check_drift"))


def test_current_data_from_a_feast_feature_view_window(
    data: DriftData, mlflow_connection: str, feast_repo: Path, task_context: Context, tmp_path: Path
) -> None:
    register_champion(mlflow_connection, MODEL, data.reference, data.reference_digest)
    offline = feast_repo / "data" / "offline" / "customer_stats"
    offline.mkdir(parents=True)
    # Two part files, as ingestion writes them: a clean day, then a drifted one.
    for name, source in (("part-clean.parquet", data.clean), ("part-drifted.parquet", data.drifted_later)):
        (offline / name).write_bytes(Path(source).read_bytes())
    context = task_context("check_drift")

    # No time column: the feature view's timestamp field.
    _, clean = _check(
        context, "", tmp_path, feature_view="customer_stats", window=DriftWindow(None, "2026-01-08", "2026-01-09")
    )
    _, drifted = _check(
        context, "", tmp_path, feature_view="customer_stats", window=DriftWindow(None, "2026-01-09", "2026-01-10")
    )

    assert clean["current_uri"] == f"{offline}/" and not clean["dataset_drift"]
    assert 0 < clean["current_rows"] <= 1500  # one part's day, cut by its timestamp field
    assert drifted["dataset_drift"] and drifted["current_rows"] == 1500


def test_no_champion_yet_or_no_data_in_the_window_skips_with_the_reason(
    data: DriftData, mlflow_connection: str, feast_repo: Path, task_context: Context, tmp_path: Path
) -> None:
    register_champion(mlflow_connection, MODEL, data.reference, data.reference_digest)
    no_champion = DriftCheckOperator(task_id="check_drift", model_name=f"{MODEL}_new", current_uri=data.clean)
    with pytest.raises(AirflowSkipException, match=f"model '{MODEL}_new' has no version aliased 'champion'"):
        no_champion.execute(task_context("check_drift"))
    no_data = DriftCheckOperator(task_id="check_drift", model_name=MODEL, feature_view="customer_stats")
    with pytest.raises(AirflowSkipException, match="feature view 'customer_stats' has no data yet"):
        no_data.execute(task_context("check_drift"))
    missing = DriftCheckOperator(task_id="check_drift", model_name=MODEL, current_uri=str(tmp_path / "none.parquet"))
    with pytest.raises(AirflowFailException, match=r"none\.parquet"):  # a named dataset that is not there fails
        missing.execute(task_context("check_drift"))
    empty = DriftCheckOperator(
        task_id="check_drift",
        model_name=MODEL,
        current_uri=data.clean,
        window=DriftWindow("event_timestamp", "2030-01-01"),
    )
    with pytest.raises(AirflowSkipException, match="no rows"):
        empty.execute(task_context("check_drift"))


def test_the_trigger_waits_for_a_champion_then_checks_again_on_each_new_one(
    data: DriftData, mlflow_connection: str, tmp_path: Path
) -> None:
    model = f"{MODEL}_watched"
    spec = DriftCheckSpec(current_uri=data.drifted, model_name=model, state_uri=str(tmp_path / "state.json"))
    trigger = DriftTrigger(spec=spec)
    assert asyncio.run(trigger.poll()) is None  # no champion yet: nothing to compare with, and the trigger lives on
    version = register_champion(mlflow_connection, model, data.reference, data.reference_digest)
    outcome = asyncio.run(trigger.poll())  # a champion: the check runs, in a child given the MLflow settings
    assert outcome is not None and outcome.fired
    assert (outcome.summary["model_name"], outcome.summary["model_version"]) == (model, version)
    assert asyncio.run(trigger.poll()) is None  # the same champion and data: not checked again

    retrained = tmp_path / "retrained.parquet"  # a new champion, trained on other data
    digest = write_dataset(pd.read_parquet(data.reference).iloc[100:], str(retrained))
    newer = register_champion(mlflow_connection, model, str(retrained), digest)
    outcome = asyncio.run(trigger.poll())  # checked again, against the new champion
    assert outcome is not None and outcome.summary["model_version"] == newer
    assert not outcome.fired and outcome.reason.endswith("was already reported")  # the same data never fires twice


def test_with_episode_state_the_same_drift_signals_once(
    data: DriftData, mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    register_champion(mlflow_connection, MODEL, data.reference, data.reference_digest)
    state = str(tmp_path / "state.json")
    events = []
    # A re-check by the next run, then new but still drifted data (each run its own task instance: a retry of
    # the same one would be told again what its killed try decided).
    for run, current in enumerate((data.drifted, data.drifted, data.drifted_later)):
        context = task_context("check_drift", run_id=f"scheduled__{run}")
        op, summary = _check(context, current, tmp_path, state_uri=state)
        assert summary["dataset_drift"]
        events.append(len(context["outlet_events"][op.drift_alias].asset_alias_events))
    assert events == [1, 0, 0]
    assert summary["episode"] == "drift; this episode was already reported"


def test_a_new_champion_starts_a_new_episode_unless_the_cooldown_holds_it_back(
    data: DriftData, mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    model = f"{MODEL}_cooldown"
    retrained = tmp_path / "retrained.parquet"  # another training set: another reference
    frame = pd.read_parquet(data.reference).iloc[100:]
    digest = write_dataset(frame, str(retrained))
    for policy, expected in ((EpisodePolicy(), [1, 1]), (EpisodePolicy(cooldown_seconds=3600), [1, 0])):
        state = str(tmp_path / f"state_{policy.cooldown_seconds}.json")
        events = []
        # The first champion sees drift; then a retrained champion, and newer data, still drifted.
        checks = ((data.reference, data.reference_digest, data.drifted), (str(retrained), digest, data.drifted_later))
        for reference, reference_digest, current in checks:
            register_champion(mlflow_connection, model, reference, reference_digest)
            context = task_context("check_drift")
            op = DriftCheckOperator(
                task_id="check_drift", model_name=model, current_uri=current, drift_asset=DRIFT,
                state_uri=state, episode_policy=policy, report_prefix=str(tmp_path / "report"),
            )  # fmt: skip
            context["outlet_events"] = OutletEventAccessors()
            op.execute(context)
            events.append(len(context["outlet_events"][op.drift_alias].asset_alias_events))
        assert events == expected, policy


def _prediction_champion(tracking_uri: str, root: Path, model: str, context: Context) -> tuple[str, pd.DataFrame]:
    """A champion that predicts its feature ``s0``, trained on a set whose ``split`` column holds out 100 rows."""
    import numpy as np

    from tests.reliability.registry_models import craft_models

    _, (crafted,) = craft_models(tracking_uri, root, [0.8], seed=7)
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"y": np.repeat([0, 1], 200)}).assign(s0=lambda f: rng.normal(size=400) + f["y"])
    train["split"] = np.where(np.arange(400) % 4 == 0, Split.HOLDOUT, Split.TRAIN)
    uri = str(root / "train.parquet")
    digest = write_dataset(train, uri)
    client = MlflowClient(tracking_uri)
    for key, value in {RunParam.NUMERIC_FEATURES: "s0", RunParam.TARGET: "y", RunParam.SPLIT_COLUMN: "split"}.items():
        client.log_param(crafted.mlflow_run_id, key, value)
    for key, value in {Tag.DATASET_URI: uri, Tag.DATASET_DIGEST: digest}.items():
        client.set_tag(crafted.mlflow_run_id, key, value)  # as the trainer does; registration copies them
    register = RegisterModelOperator(task_id="register", model_name=model, mlflow_run_id=crafted.mlflow_run_id)
    version = register.execute(context("register"))["version"]
    client.set_registered_model_alias(model, CHAMPION, version)
    return str(version), train


def test_prediction_drift_compares_the_champions_predictions_with_its_holdout_predictions(
    mlflow_connection: str, task_context: Context, tmp_path: Path
) -> None:
    import numpy as np

    model = f"{MODEL}_predictions"
    version, _ = _prediction_champion(mlflow_connection, tmp_path, model, task_context)
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, size=300)
    current = pd.DataFrame({
        "customer_id": np.arange(300), "s0": rng.normal(size=300) + labels,
        "event_timestamp": pd.Timestamp("2026-01-08", tz="UTC") + pd.to_timedelta(np.arange(300), unit="min"),
    })  # fmt: skip
    features = str(tmp_path / "features.parquet")
    write_dataset(current, features)
    # What batch inference wrote: the model's scores of these rows (unshifted), then a shifted scoring; and rows
    # of another version, which are not the champion's and are left out.
    scored = current[["customer_id", "event_timestamp"]].assign(prediction=current["s0"], model_version=version)
    other = scored.assign(prediction=scored["prediction"] + 5, model_version="999")
    unshifted, shifted = tmp_path / "unshifted", tmp_path / "shifted"
    write_dataset(pd.concat([scored, other]), str(unshifted / "run1.parquet"))
    write_dataset(scored.assign(prediction=scored["prediction"] + 1.5), str(shifted / "run1.parquet"))

    results = {}
    for name, predictions in (("unshifted", unshifted), ("shifted", shifted)):
        context = task_context("check_drift", run_id=name)
        op = DriftCheckOperator(
            task_id="check_drift", model_name=model, current_uri=features, predictions_uri=f"{predictions}/",
            window=DriftWindow("event_timestamp", start="2026-01-08"), drift_asset=DRIFT,
            report_prefix=str(tmp_path / name),
        )  # fmt: skip
        context["outlet_events"] = OutletEventAccessors()
        summary = op.execute(context)
        results[name] = (summary, len(context["outlet_events"][op.drift_alias].asset_alias_events))

    for summary, _ in results.values():
        assert not summary["dataset_drift"] and [c["column"] for c in summary["columns"]] == ["s0"]  # features: same
    clean, clean_events = results["unshifted"]
    assert clean["prediction_drift"]["column"] == "prediction" and not clean["prediction_drift"]["drifted"]
    assert clean_events == 0
    drifted, drifted_events = results["shifted"]
    assert drifted["prediction_drift"]["drifted"] and drifted["prediction_drift"]["kind"] == "num"
    assert drifted["prediction_drift"]["score"] < drifted["prediction_drift"]["threshold"]  # a p-value below 0.05
    assert drifted_events == 1
    assert clean["window_id"] != drifted["window_id"]  # the predictions are part of what was judged
