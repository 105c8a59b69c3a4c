"""run_drift_check: the one drift check of the operator, the sensor and the trigger's child process.

The reference here is an explicit dataset; the model's champion as the reference runs against a real
MLflow server in tests/integration/test_drift_operator.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops_provider.core.drift.episodes import EpisodeStateFile
from airflow_mlops_provider.core.drift.pipeline import run_drift_check
from airflow_mlops_provider.core.drift.spec import (
    DriftCheckSpec,
    DriftWindow,
    EpisodePolicy,
    NoCurrentDataError,
    NothingToCheckError,
)
from airflow_mlops_provider.core.io.storage import ObjectStore
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _no_mlflow() -> None:
    raise AssertionError("an explicit reference needs no MLflow")


def _spec(current_uri: str, data: DriftData, **kwargs: Any) -> DriftCheckSpec:
    return DriftCheckSpec(current_uri=current_uri, reference_uri=data.reference, exclude_columns=NOT_FEATURES, **kwargs)


def test_drift_is_reported_per_window_and_fires(data: DriftData, tmp_path: Path) -> None:
    outcome = run_drift_check(_spec(data.drifted, data, report_prefix=str(tmp_path)), ObjectStore(), _no_mlflow)
    summary = outcome.summary
    assert (outcome.fired, outcome.reason) == (True, "drift")
    assert summary["dataset_drift"] and "monthly_charges" in summary["drifted_columns"]
    assert (summary["reference_uri"], summary["current_uri"]) == (data.reference, data.drifted)
    assert summary["reference_rows"] == 2100 and "episode" not in summary  # training rows; no episode state
    report = Path(str(outcome.report_uri))
    assert report == tmp_path / summary["window_id"] / "drift_report.html"
    assert "Value Drift for column monthly_charges" in report.read_text()
    stored = json.loads((report.parent / "drift_summary.json").read_text())
    assert stored["drifted_columns"] == summary["drifted_columns"]


def test_without_drift_only_the_summary_is_stored(data: DriftData, tmp_path: Path) -> None:
    spec = _spec(data.clean, data, report_prefix=f"{tmp_path}/", report_per_window=False)
    outcome = run_drift_check(spec, ObjectStore(), _no_mlflow)
    assert (outcome.fired, outcome.reason) == (False, "no drift")
    assert outcome.report_uri == str(tmp_path / "drift_summary.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drift_summary.json"]
    always = run_drift_check(
        _spec(data.clean, data, report_prefix=str(tmp_path / "always"), always_report=True), ObjectStore(), _no_mlflow
    )
    assert str(always.report_uri).endswith("drift_report.html")


def test_with_episode_state_a_window_fires_once_per_episode(data: DriftData, tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    reasons = []
    for current, now in ((data.drifted, 0.0), (data.drifted, 1.0), (data.drifted_later, 2.0), (data.clean, 3.0)):
        outcome = run_drift_check(_spec(current, data, state_uri=state), ObjectStore(), _no_mlflow, now=now)
        assert outcome.summary["episode"] == outcome.reason
        reasons.append((outcome.fired, outcome.reason))
    assert reasons[0] == (True, "drift episode started")
    assert reasons[1][0] is False and "already judged" in reasons[1][1]
    assert reasons[2] == (False, "drift; this episode was already reported")
    assert reasons[3] == (False, "no drift; the drift episode ended")


def test_a_given_episode_state_replaces_the_state_uri_and_the_policy_applies(data: DriftData, tmp_path: Path) -> None:
    states = EpisodeStateFile(None)  # in memory, as a sensor keeps it across pokes
    spec = _spec(data.drifted, data, episode_policy=EpisodePolicy(debounce=2), state_uri=str(tmp_path / "unused"))
    first = run_drift_check(spec, ObjectStore(), _no_mlflow, states=states)
    later = run_drift_check(
        _spec(data.drifted_later, data, episode_policy=spec.episode_policy), ObjectStore(), _no_mlflow, states=states
    )
    assert (first.fired, later.fired) == (False, True)  # debounced: two drifted windows in a row
    assert not (tmp_path / "unused").exists()


def test_the_state_is_saved_after_the_report_so_a_failed_report_is_checked_again(
    data: DriftData, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    (tmp_path / "blocker").write_text("a file where the report directory should be")
    with pytest.raises(OSError):
        run_drift_check(
            _spec(data.drifted, data, state_uri=str(state), report_prefix=str(tmp_path / "blocker" / "reports")),
            ObjectStore(),
            _no_mlflow,
        )
    assert not state.exists()
    retried = run_drift_check(
        _spec(data.drifted, data, state_uri=str(state), report_prefix=str(tmp_path / "reports")),
        ObjectStore(),
        _no_mlflow,
    )
    assert retried.fired and state.exists() and Path(str(retried.report_uri)).exists()


def test_nothing_to_check_yet(data: DriftData, tmp_path: Path) -> None:
    with pytest.raises(NoCurrentDataError, match=r"none\.parquet"):
        run_drift_check(_spec(str(tmp_path / "none.parquet"), data), ObjectStore(), _no_mlflow)
    with pytest.raises(NoCurrentDataError, match="no parquet or CSV files"):
        run_drift_check(_spec(f"{tmp_path}/empty/", data), ObjectStore(), _no_mlflow)
    late = DriftWindow("event_timestamp", start="2030-01-01")
    with pytest.raises(NothingToCheckError, match="no rows") as empty:
        run_drift_check(_spec(data.clean, data, window=late), ObjectStore(), _no_mlflow)
    assert not isinstance(empty.value, NoCurrentDataError)


def test_a_window_cuts_the_current_rows_and_empty_bounds_are_open(data: DriftData) -> None:
    half_day = DriftWindow("event_timestamp", start="2026-01-08T06:00:00", end="2026-01-08T18:00:00")
    cut = run_drift_check(_spec(data.clean, data, window=half_day), ObjectStore(), _no_mlflow)
    rendered_empty = DriftWindow("event_timestamp", start="", end="")  # e.g. templates of unset params
    whole = run_drift_check(_spec(data.clean, data, window=rendered_empty), ObjectStore(), _no_mlflow)
    assert 0 < cut.summary["current_rows"] < whole.summary["current_rows"] == 1500
