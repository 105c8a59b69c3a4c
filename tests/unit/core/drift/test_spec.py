"""The drift spec objects: JSON round trips, rendered config fields, validation, cheap imports, and the
fingerprint of a check's inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlops_provider.core.drift.spec import (
    DriftCheckSpec,
    DriftConfig,
    DriftOutcome,
    DriftWindow,
    EpisodePolicy,
)
from airflow_mlops_provider.core.io.storage import ObjectStore
from tests.fixtures.drift_data import DriftData, write_drift_data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"), rows=400)


def _no_mlflow() -> None:
    raise AssertionError("an explicit reference needs no MLflow")


def test_a_spec_round_trips_through_json() -> None:
    spec = DriftCheckSpec(
        current_uri="s3://bucket/features/",
        model_name="churn",
        window=DriftWindow("event_timestamp", start="2026-01-08", lookback_seconds=3600.0),
        columns=("plan", "usage_gb"),
        exclude_columns=["customer_id"],
        drift_config=DriftConfig(num_method="ks", per_column_threshold={"plan": 0.2}),
        state_uri="s3://bucket/state.json",
        episode_policy=EpisodePolicy(debounce=2, cooldown_seconds=60.0, max_events=3),
        report_prefix="s3://bucket/reports",
    )
    data = json.loads(json.dumps(spec.to_dict()))
    rebuilt = DriftCheckSpec.from_dict(data)
    assert rebuilt.to_dict() == data
    assert (rebuilt.window, rebuilt.drift_config, rebuilt.episode_policy) == (
        spec.window,
        spec.drift_config,
        spec.episode_policy,
    )
    assert rebuilt.window.lookback is not None and rebuilt.window.lookback.total_seconds() == 3600


def test_a_config_is_taken_as_is_or_built_from_rendered_fields() -> None:
    config = DriftConfig(drift_share=0.3)
    assert DriftConfig.of(config) is config
    assert DriftConfig.of({"drift_share": "0.3"}) == config  # a rendered "{{ params.drift_share }}"
    assert DriftConfig.of(None) == DriftConfig()
    with pytest.raises(ValueError, match="unknown drift method"):
        DriftConfig.of({"method": "kolmogorov"})


def test_a_spec_needs_current_data_and_a_reference() -> None:
    with pytest.raises(ValueError, match="reference_uri or model_name"):
        DriftCheckSpec(current_uri="current.parquet")
    with pytest.raises(ValueError, match="current_uri"):
        DriftCheckSpec(current_uri="", model_name="churn")


def test_an_outcome_round_trips_through_json() -> None:
    outcome = DriftOutcome({"dataset_drift": True, "report_uri": "r.html"}, True, "drift")
    assert DriftOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome
    assert outcome.report_uri == "r.html"


def test_the_specs_import_nothing_heavy() -> None:
    code = "import sys, airflow_mlops_provider.core.drift.spec, airflow_mlops_provider.core.drift.worker; "
    code += "print([m for m in ('pandas', 'numpy', 'scipy', 'mlflow') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_inputs_fingerprint_changes_with_the_listing_only(data: DriftData, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    shutil.copyfile(data.clean, parts / "part-a.parquet")
    spec = DriftCheckSpec(current_uri=f"{parts}/", reference_uri=data.reference)
    store = ObjectStore()
    first = spec.inputs_fingerprint(store, _no_mlflow)
    assert spec.inputs_fingerprint(store, _no_mlflow) == first

    shutil.copyfile(data.drifted, parts / "part-b.parquet")  # a new part
    second = spec.inputs_fingerprint(store, _no_mlflow)
    os.utime(parts / "part-b.parquet", ns=(1, 1))  # the same part rewritten (another modification time)
    third = spec.inputs_fingerprint(store, _no_mlflow)
    (parts / "part-b.parquet").unlink()
    assert len({first, second, third}) == 3
    assert spec.inputs_fingerprint(store, _no_mlflow) == first  # back to the first listing

    missing = DriftCheckSpec(current_uri=f"{tmp_path}/none/", reference_uri=data.reference)
    assert missing.inputs_fingerprint(store, _no_mlflow) == missing.inputs_fingerprint(store, _no_mlflow)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"threshold": -0.05}, r"drift threshold -0\.05 must be a positive finite number"),
        ({"threshold": float("nan")}, "drift threshold nan must be a positive finite number"),
        ({"num_threshold": float("inf")}, r"drift threshold inf \(num_threshold\) must be a positive finite"),
        ({"threshold": 0}, "drift threshold 0 must be a positive finite number"),
        ({"method": "ks", "threshold": 1.0}, r"not usable with method 'ks' \(a p-value\)"),
        ({"cat_method": "jensenshannon", "cat_threshold": 1.2}, "not usable with method 'jensenshannon'"),
        ({"per_column_method": {"a": "z"}, "per_column_threshold": {"a": 5}}, r"\(column 'a'\) is not usable"),
        ({"drift_share": 0}, r"drift_share must be in \(0, 1\], got 0"),
        ({"drift_share": float("nan")}, r"drift_share must be in \(0, 1\], got nan"),
        ({"min_rows": 1}, "min_rows must be an integer of at least 2, got 1"),
        ({"min_rows": 2.5}, "min_rows must be an integer of at least 2, got 2.5"),
    ],
)
def test_a_config_refuses_numbers_out_of_range(settings: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DriftConfig(**settings)  # type: ignore[arg-type]


def test_distance_thresholds_above_one_are_fine_and_rendered_numbers_are_parsed() -> None:
    assert DriftConfig(method="psi", threshold=2.5).threshold == 2.5
    assert DriftConfig.from_dict({"min_rows": "100", "threshold": "0.2"}) == DriftConfig(min_rows=100, threshold=0.2)
    with pytest.raises(ValueError, match="drift_config threshold='a lot' is not a number"):
        DriftConfig.from_dict({"threshold": "a lot"})


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: EpisodePolicy(debounce=0), "debounce must be an integer of at least 1, got 0"),
        (lambda: EpisodePolicy(clear_after=True), "clear_after must be an integer of at least 1, got True"),
        (lambda: EpisodePolicy(cooldown_seconds=-1), "cooldown_seconds must be a finite number >= 0, got -1"),
        (lambda: EpisodePolicy(cooldown_seconds=float("inf")), "cooldown_seconds must be a finite number >= 0"),
        (lambda: EpisodePolicy(period_seconds=float("nan")), "period_seconds must be a positive finite number"),
        (lambda: EpisodePolicy(max_events=0), r"max_events must be an integer of at least 1 \(or None\), got 0"),
        (lambda: DriftWindow("t", lookback_seconds=0), "lookback_seconds must be a positive finite number"),
        (lambda: DriftWindow("t", lookback_seconds=float("nan")), "lookback_seconds must be a positive finite"),
    ],
)
def test_policies_and_windows_refuse_numbers_out_of_range(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_prediction_drift_needs_the_model_whose_holdout_is_scored() -> None:
    from airflow_mlops_provider.core.drift.spec import DriftCheckSpec

    spec = DriftCheckSpec(current_uri="c.parquet", model_name="churn", predictions_uri="p/")
    assert DriftCheckSpec.from_dict(spec.to_dict()).predictions_uri == "p/"
    with pytest.raises(ValueError, match="predictions_uri\\) needs model_name and no reference_uri"):
        DriftCheckSpec(current_uri="c.parquet", reference_uri="r.parquet", predictions_uri="p/")
