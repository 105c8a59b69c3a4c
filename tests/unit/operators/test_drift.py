"""DriftCheckOperator with an explicit reference: its window and config are rendered, it returns the
pipeline's summary, links the report, and emits the drift event only when the check fires.

The champion as the reference, feature views and episodes run against real servers in
tests/integration/test_drift_operator.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_mlops_provider.contracts import drift_event_extra
from airflow_mlops_provider.core.drift.pipeline import run_drift_check
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec, DriftConfig, DriftWindow
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.links.drift import DriftReportLink
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data

DRIFT = Asset(name="churn_drift_unit", uri="mlops://drift/churn_drift_unit", group="drift")
Context = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _operator(data: DriftData, current_uri: str, tmp_path: Path, **kwargs: Any) -> DriftCheckOperator:
    return DriftCheckOperator(
        task_id="check_drift",
        current_uri=current_uri,
        reference_uri=data.reference,
        exclude_columns=NOT_FEATURES,
        report_prefix=str(tmp_path / "report"),
        drift_asset=DRIFT,
        storage_conn_id=None,
        **kwargs,
    )


def _execute(op: DriftCheckOperator, context: dict[str, Any]) -> Any:
    context["outlet_events"] = OutletEventAccessors()
    return op.execute(context)


def test_the_window_and_the_config_are_rendered_and_the_summary_is_the_pipelines(
    data: DriftData, task_context: Context, tmp_path: Path
) -> None:
    op = _operator(
        data, "{{ params.current }}", tmp_path,
        window=DriftWindow("event_timestamp", start="{{ params.start }}", end="{{ params.end }}"),
        drift_config={"drift_share": "{{ params.drift_share }}"},
    )  # fmt: skip
    params = {"current": data.clean, "start": "2026-01-08T06:00:00", "end": "2026-01-08T18:00:00", "drift_share": 0.9}
    op.render_template_fields({"params": params})
    assert op.window == DriftWindow("event_timestamp", start=params["start"], end=params["end"])
    context = task_context("check_drift")
    summary = _execute(op, context)

    window = DriftWindow("event_timestamp", start=params["start"], end=params["end"])
    spec = DriftCheckSpec(
        current_uri=data.clean, reference_uri=data.reference, window=window, exclude_columns=NOT_FEATURES,
        drift_config=DriftConfig(drift_share=0.9), report_prefix=str(tmp_path / "same"), report_per_window=False,
    )  # fmt: skip
    expected = run_drift_check(spec, ObjectStore(), lambda: None).summary
    assert {**summary, "report_uri": None} == {**expected, "report_uri": None}
    assert summary["drift_share"] == 0.9 and 0 < summary["current_rows"] < 1500
    assert summary["report_uri"] == str(tmp_path / "report" / "drift_summary.json")
    assert context["ti"].xcom[DriftReportLink().xcom_key] == (tmp_path / "report" / "drift_summary.json").as_uri()
    assert context["outlet_events"][op.drift_alias].asset_alias_events == []


def test_drift_emits_the_event_with_the_summarys_extra(data: DriftData, task_context: Context, tmp_path: Path) -> None:
    op = _operator(data, data.drifted, tmp_path)
    context = task_context("check_drift")
    summary = _execute(op, context)
    (event,) = context["outlet_events"][op.drift_alias].asset_alias_events
    assert event.dest_asset_key.name == DRIFT.name
    assert event.extra == drift_event_extra(summary)
    assert summary["report_uri"] == str(tmp_path / "report" / "drift_report.html")


def test_nothing_to_check_skips_and_a_missing_dataset_fails(
    data: DriftData, task_context: Context, tmp_path: Path
) -> None:
    late = _operator(data, data.clean, tmp_path, window=DriftWindow("event_timestamp", start="2030-01-01"))
    with pytest.raises(AirflowSkipException, match="Nothing to check: no rows"):
        _execute(late, task_context("check_drift"))
    missing = _operator(data, str(tmp_path / "none.parquet"), tmp_path)
    with pytest.raises(AirflowFailException, match=r"none\.parquet"):
        _execute(missing, task_context("check_drift"))
    untestable = _operator(data, data.clean, tmp_path, columns=["nope"])
    with pytest.raises(AirflowFailException, match="missing"):
        _execute(untestable, task_context("check_drift"))


def test_a_check_needs_a_reference_and_current_data() -> None:
    with pytest.raises(ValueError, match="reference_uri or model_name"):
        DriftCheckOperator(task_id="check_drift", current_uri="current.parquet")
    with pytest.raises(ValueError, match="current_uri or feature_view"):
        DriftCheckOperator(task_id="check_drift", model_name="churn")


def test_current_data_that_renders_empty_fails_clearly(data: DriftData, task_context: Context, tmp_path: Path) -> None:
    op = _operator(data, "{{ params.current }}", tmp_path)
    op.render_template_fields({"params": {"current": ""}})
    with pytest.raises(AirflowFailException, match="current_uri and feature_view both rendered empty"):
        _execute(op, task_context("check_drift"))


def test_forwarding_a_watchers_event_emits_the_drift_asset_with_the_summary(task_context: Context) -> None:
    from types import SimpleNamespace

    from airflow_mlops_provider.operators.drift import ForwardDriftEventOperator

    watch = Asset(name="model_drift_watch", uri="mlops://drift/model/watch")
    op = ForwardDriftEventOperator(task_id="signal_retraining", watch_asset=watch, drift_asset=DRIFT)
    assert DRIFT in op.outlets
    summary = {"model_name": "m", "model_version": "3", "drifted_columns": ["a"], "share": 1.0, "report_uri": "r"}
    context = task_context("signal_retraining")
    context["triggering_asset_events"] = {watch: [SimpleNamespace(extra={"payload": {**summary, "current_rows": 9}})]}
    assert _execute(op, context) == {**summary, "current_rows": 9}
    assert context["outlet_events"][DRIFT].extra == drift_event_extra(summary)

    by_hand = task_context("signal_retraining")
    by_hand["triggering_asset_events"] = {watch: []}
    with pytest.raises(AirflowSkipException, match="nothing to forward"):
        _execute(op, by_hand)
