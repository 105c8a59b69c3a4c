"""The drift area's bad-input corpus (``bad_inputs/drift/cases.json``), fed where a user feeds it: a
``DriftCheckOperator`` task (a clear non-retryable failure, or a skip for a window too small to judge), or
the spec objects a DAG file builds. Nothing is written: no report, no episode state, no drift event."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_mlops_provider.core.drift.spec import DriftWindow, EpisodePolicy
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data
from tests.fixtures.task_context import RuntimeTaskInstance

CORPUS = Path(__file__).parent / "bad_inputs" / "drift"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text())
ERRORS: dict[str, type[BaseException]] = {
    error.__name__: error for error in (AirflowFailException, AirflowSkipException, ValueError)
}
DRIFT = Asset(name="bad_input_drift", uri="mlops://drift/bad_input_drift")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


def _operator(data: DriftData, work: Path, **kwargs: Any) -> Callable[[], object]:
    """A check of the drifted window against the reference with ``kwargs`` changed; it writes under ``work``."""
    settings: dict[str, Any] = {
        "reference_uri": data.reference,
        "current_uri": data.drifted,
        "exclude_columns": NOT_FEATURES,
        "report_prefix": str(work / "reports"),
        "state_uri": str(work / "state" / "episode.json"),
        "drift_asset": DRIFT,
        "storage_conn_id": None,
    } | kwargs
    op = DriftCheckOperator(task_id="check_drift", **settings)
    context: dict[str, Any] = {"ti": RuntimeTaskInstance("bad_inputs", "manual__1", "check_drift")}
    context["outlet_events"] = OutletEventAccessors()
    work.joinpath("events").mkdir(parents=True)

    def execute() -> object:
        try:
            return op.execute(context)  # type: ignore[arg-type]
        finally:
            events = context["outlet_events"][op.drift_alias].asset_alias_events
            work.joinpath("events", "emitted.json").write_text(json.dumps(len(events)))

    return execute


def _small_current(data: DriftData, work: Path) -> str:
    path = str(work / "small_current.parquet")
    write_dataset(pd.read_parquet(data.drifted).head(20), path)
    return path


FEEDS: dict[str, Callable[[DriftData, Path, Path | None], Callable[[], object]]] = {
    "negative_threshold": lambda d, w, _: _operator(d, w, drift_config={"threshold": -0.05}),
    "nan_threshold": lambda d, w, _: _operator(d, w, drift_config={"num_threshold": "nan"}),
    "p_value_threshold_above_one": lambda d, w, _: _operator(d, w, drift_config={"method": "ks", "threshold": 2}),
    "default_method_threshold_out_of_range": lambda d, w, _: _operator(d, w, drift_config={"cat_threshold": 1.5}),
    "drift_share_not_a_number": lambda d, w, _: _operator(d, w, drift_config={"drift_share": "half"}),
    "unknown_drift_method": lambda d, w, _: _operator(d, w, drift_config={"method": "kolmogorov"}),
    "one_row_reference": lambda d, w, path: _operator(d, w, reference_uri=str(path)),
    "current_below_min_rows": lambda d, w, _: _operator(d, w, current_uri=_small_current(d, w)),
    "missing_column": lambda d, w, _: _operator(d, w, columns=["monthly_charges", "nope"]),
    "window_start_after_end": lambda d, w, _: _operator(
        d, w, window=DriftWindow("event_timestamp", start="2026-01-09", end="2026-01-08")
    ),
    "window_bound_not_a_time": lambda d, w, _: _operator(
        d, w, window=DriftWindow("event_timestamp", start="yesterday-ish")
    ),
    "negative_lookback": lambda d, w, _: lambda: DriftWindow("event_timestamp", lookback_seconds=-3600),
    "nan_cooldown": lambda d, w, _: lambda: EpisodePolicy(cooldown_seconds=math.nan),
    "zero_debounce": lambda d, w, _: lambda: EpisodePolicy(debounce=0),
}


def test_every_case_has_a_feed_and_the_corpus_is_large_enough() -> None:
    assert sorted(case["case"] for case in CASES) == sorted(FEEDS)
    assert all((CORPUS / case["input"]).is_file() for case in CASES if case["input"])


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_bad_input_fails_clearly_and_writes_nothing(case: dict[str, Any], data: DriftData, tmp_path: Path) -> None:
    work = tmp_path / "work"
    feed = FEEDS[case["case"]](data, work, CORPUS / case["input"] if case["input"] else None)
    with pytest.raises(ERRORS[case["error"]], match=case["match"]):
        feed()
    written = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()) if work.exists() else []
    assert [name for name in written if name != "small_current.parquet"] in ([], ["events/emitted.json"])
    if written:
        assert json.loads((work / "events" / "emitted.json").read_text()) == 0  # no drift event
