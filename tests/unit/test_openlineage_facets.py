"""OpenLineage of the operators: the naming, the CT loop's graph from the tasks' real results, the facets, no
secrets; and the operators that run on local files, executed, then asked for their lineage as Airflow's
OpenLineage provider asks (its ``DefaultExtractor``, on success and on failure).

The operators that need Feast or MLflow report their lineage in the real run of tests/e2e/test_lineage.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.openlineage.extractors.base import DefaultExtractor
from airflow.providers.openlineage.extractors.manager import ExtractorManager
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors
from openlineage.client.serde import Serde

from airflow_mlops_provider.contracts import (
    DriftSummary,
    IngestionResult,
    PromotionRecord,
    RegistrationResult,
    TrainingResult,
    TrainingSetResult,
    ValidationRecord,
)
from airflow_mlops_provider.core.io.datasets import write_dataset
from airflow_mlops_provider.openlineage_facets import (
    DRIFT_FACET,
    FILE_NAMESPACE,
    PROMOTION_FACET,
    DatasetId,
    drift_lineage,
    feature_view_dataset,
    forwarded_drift_lineage,
    ingestion_lineage,
    logged_model_dataset,
    mlflow_namespace,
    model_version_dataset,
    promotion_lineage,
    registration_lineage,
    storage_dataset,
    training_lineage,
    training_set_lineage,
    validation_lineage,
)
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.operators.validation import DataValidationOperator
from demo import data as demo_data
from tests.fixtures.drift_data import NOT_FEATURES, write_drift_data
from tests.paths import DAGS

Context = Callable[..., dict[str, Any]]
#: A tracking URI with every kind of credential a URI can carry.
TRACKING = "http://alice:s3cr3t@mlflow:5000/?token=t0k3n#frag"
SECRETS = ("alice", "s3cr3t", "t0k3n")
MLFLOW = "http://mlflow:5000"
RAW_SUITE = DAGS / "expectations" / "churn_raw_batch.json"

INGESTED = IngestionResult(
    feature_view="customer_stats", batch_id="2024-05-01", batch_uri="s3://data/landing/2024-05-01.parquet",
    part_uri="s3://data/offline/customer_stats/2024-05-01.parquet", rows=400,
    start="2024-05-01T00:00:00+00:00", end="2024-05-02T00:00:00+00:00",
)  # fmt: skip
TRAINING_SET = TrainingSetResult(
    uri="s3://data/training_sets/churn_v1/manual__1.parquet", digest="d1g35t", rows=380, dropped=20, missing=20,
    filled=0, window="[2024-04-03, 2024-05-01)", feature_service="churn_v1",
)  # fmt: skip
TRAINED = TrainingResult(
    mlflow_run_id="r1", experiment_id="1", model_uri="models:/m-0123", metrics={"val_roc_auc": 0.8},
    dataset_uri=TRAINING_SET["uri"], dataset_digest=TRAINING_SET["digest"],
)  # fmt: skip
REGISTERED = RegistrationResult(
    model_name="churn", version="2", mlflow_run_id="r1", model_uri="models:/churn/2", created=True
)
PROMOTED = PromotionRecord(
    promote=True, reason="roc_auc 0.81 beats the champion's 0.78 by 0.03", metric="roc_auc", challenger_score=0.81,
    champion_score=0.78, policy={"metric": "roc_auc", "direction": "maximize"}, model_name="churn", version="2",
    champion_version="1", holdout_uri=TRAINING_SET["uri"], holdout_digest="h0ld", holdout_rows=57,
)  # fmt: skip
DRIFTED = DriftSummary(
    dataset_drift=True, share=0.6, drift_share=0.5, drifted_columns=["usage_gb", "plan", "region"],
    reference_rows=266, current_rows=400, columns=[], model_name="churn", model_version="2",
    reference_uri=TRAINING_SET["uri"], reference_digest=TRAINING_SET["digest"],
    current_uri="s3://data/offline/customer_stats/", window_id="w1nd0w", episode="drift",
    report_uri="s3://data/drift_reports/drift_monitor/manual__2/check_drift/drift_report.html",
)  # fmt: skip


def ids(datasets: list[Any]) -> list[DatasetId]:
    return [DatasetId(dataset.namespace, dataset.name) for dataset in datasets]


def as_json(lineage: Any) -> dict[str, Any]:
    """The lineage as the transport sends it."""
    return {
        "inputs": [json.loads(Serde.to_json(dataset)) for dataset in lineage.inputs],
        "outputs": [json.loads(Serde.to_json(dataset)) for dataset in lineage.outputs],
        "run": {key: json.loads(Serde.to_json(facet)) for key, facet in lineage.run_facets.items()},
    }


# --- Naming -----------------------------------------------------------------------------------------


def test_files_follow_openlineages_naming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage_dataset("s3://data/training_sets/a.parquet") == ("s3://data", "training_sets/a.parquet")
    assert storage_dataset("s3://data/ingested/") == ("s3://data", "ingested")
    assert storage_dataset(f"{tmp_path}/ingested/") == (FILE_NAMESPACE, f"{tmp_path}/ingested")
    assert storage_dataset(f"file://{tmp_path}/a.parquet") == (FILE_NAMESPACE, f"{tmp_path}/a.parquet")
    monkeypatch.chdir(tmp_path)
    assert storage_dataset("data/../a.parquet") == (FILE_NAMESPACE, f"{tmp_path}/a.parquet")


def test_mlflow_namespaces_carry_no_credentials() -> None:
    assert mlflow_namespace(TRACKING) == MLFLOW
    assert mlflow_namespace("https://user:pw@mlflow.example.com/tracking/") == "https://mlflow.example.com/tracking"
    assert mlflow_namespace("databricks") == "databricks"
    assert model_version_dataset(TRACKING, "churn", "3") == (MLFLOW, "models/churn/versions/3")
    assert logged_model_dataset(TRACKING, "models:/m-0123") == (MLFLOW, "models:/m-0123")
    assert feature_view_dataset("churn", "customer_stats") == ("feast://churn", "customer_stats")


# --- The graph of the CT loop, from the tasks' results ---------------------------------------------


def test_the_ct_loop_is_one_connected_graph_with_its_facets() -> None:
    schema = {"customer_id": "int64", "event_timestamp": "timestamp[us, tz=UTC]", "usage_gb": "double"}
    ingestion = ingestion_lineage(INGESTED, "churn", schema)
    served = {"customer_stats": {"usage_gb": "Float64", "plan": "String"}}
    training_set = training_set_lineage(TRAINING_SET, "churn", served, "s3://data/ingested/", {"usage_gb": "float64"})
    training = training_lineage(TRAINED, TRACKING)
    registration = registration_lineage(REGISTERED, TRACKING, TRAINED["model_uri"], TRAINED["dataset_uri"], "d1g35t")
    promotion = promotion_lineage(PROMOTED, TRACKING)
    drift = drift_lineage(DRIFTED, TRACKING, feature_view_dataset("churn", "customer_stats"))

    view, training_set_id = (
        ("feast://churn", "customer_stats"),
        ("s3://data", "training_sets/churn_v1/manual__1.parquet"),
    )
    model, version = (MLFLOW, "models:/m-0123"), (MLFLOW, "models/churn/versions/2")
    # batch → feature view → training set → the run's model → model version; version + current data → report
    assert ids(ingestion.inputs) == [("s3://data", "landing/2024-05-01.parquet")]
    assert ids(ingestion.outputs) == [view]
    assert ids(training_set.inputs) == [view, ("s3://data", "ingested")]
    assert ids(training_set.outputs) == [training_set_id]
    assert ids(training.inputs) == [training_set_id] and ids(training.outputs) == [model]
    assert ids(registration.inputs) == [model, training_set_id] and ids(registration.outputs) == [version]
    assert ids(promotion.inputs) == [version, (MLFLOW, "models/churn/versions/1"), training_set_id]
    assert ids(promotion.outputs) == [(MLFLOW, "models/churn/aliases/champion")]
    assert ids(drift.inputs) == [version, training_set_id, view]
    assert ids(drift.outputs) == [("s3://data", DRIFTED["report_uri"].removeprefix("s3://data/"))]

    # The digest is the training set's version wherever it appears; the schemas are the written columns.
    written = as_json(training_set)["outputs"][0]["facets"]
    assert written["version"]["datasetVersion"] == "d1g35t"
    assert [(f["name"], f["type"]) for f in written["schema"]["fields"]] == [("usage_gb", "float64")]
    for lineage in (training, registration, drift):
        read = next(d for d in as_json(lineage)["inputs"] if d["name"] == training_set_id[1])
        assert read["facets"]["version"]["datasetVersion"] == "d1g35t"
    view_schema = as_json(ingestion)["outputs"][0]["facets"]["schema"]["fields"]
    assert [f["name"] for f in view_schema] == list(schema)
    assert [f["name"] for f in as_json(training_set)["inputs"][0]["facets"]["schema"]["fields"]] == ["usage_gb", "plan"]

    decision = as_json(promotion)["run"][PROMOTION_FACET]
    assert decision["_schemaURL"].endswith("#/$defs/MlopsPromotionRunFacet")
    assert {key: decision[key] for key in PROMOTED if key != "holdout_uri"} == {
        key: value for key, value in PROMOTED.items() if key != "holdout_uri"
    }
    verdict = as_json(drift)["outputs"][0]["facets"][DRIFT_FACET]
    assert (verdict["dataset_drift"], verdict["drifted_columns"], verdict["window_id"]) == (
        True, ["usage_gb", "plan", "region"], "w1nd0w",
    )  # fmt: skip
    assert ids(forwarded_drift_lineage(DRIFTED).inputs) == ids(drift.outputs)

    events = json.dumps([as_json(lineage) for lineage in (training, registration, promotion, drift)])
    assert not [secret for secret in SECRETS if secret in events]


def test_a_rejection_moves_no_alias_and_a_first_model_has_no_champion() -> None:
    rejected = PromotionRecord(**{**PROMOTED, "promote": False, "reason": "below min_value", "champion_version": None})
    lineage = promotion_lineage(rejected, MLFLOW)
    assert ids(lineage.inputs) == [(MLFLOW, "models/churn/versions/2"), ("s3://data", TRAINING_SET["uri"][10:])]
    assert lineage.outputs == []
    assert as_json(lineage)["run"][PROMOTION_FACET]["promote"] is False


def test_a_run_without_a_recorded_dataset_reports_only_its_model() -> None:
    lineage = training_lineage(TrainingResult(**{**TRAINED, "dataset_uri": None, "dataset_digest": None}), MLFLOW)
    assert (lineage.inputs, ids(lineage.outputs)) == ([], [(MLFLOW, "models:/m-0123")])


def test_a_batch_found_in_quarantine_reports_its_recorded_failures() -> None:
    record = ValidationRecord(
        success=False, suite_name="churn_raw_batch", row_count=400, statistics={}, message="",
        failures=[{"expectation_type": "expect_column_values_to_be_between", "column": "monthly_charges"}],
        dataset_uri="/data/landing/b.parquet",
    )  # fmt: skip
    checked = as_json(validation_lineage(record))
    assert checked["outputs"] == []
    assertions = checked["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions == [
        {"assertion": "expect_column_values_to_be_between", "column": "monthly_charges", "params": {}, "success": False}
    ]


# --- Operators, executed, then asked as the OpenLineage provider asks -------------------------------


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A good batch and a bad one (negative charges, an unknown plan)."""
    root = tmp_path_factory.mktemp("batches")
    good = demo_data.generate_batch(300, "2024-05-01", seed=5)
    bad = good.assign(plan=good["plan"].where(good.index % 10 != 0, "gold"))
    bad.loc[:4, "monthly_charges"] = -1.0
    uris = {"good": str(root / "good.parquet"), "bad": str(root / "bad.parquet")}
    write_dataset(good, uris["good"])
    write_dataset(bad, uris["bad"])
    return uris


def validate(tmp_path: Path, dataset: str) -> DataValidationOperator:
    return DataValidationOperator(
        task_id="validate", dataset=dataset, suite_path=str(RAW_SUITE), docs_uri=str(tmp_path / "docs.html")
    )


def test_a_passed_validation_reports_every_expectation(
    tmp_path: Path, batches: dict[str, str], task_context: Context
) -> None:
    op = validate(tmp_path, batches["good"])
    assert op.get_openlineage_facets_on_complete(None) is None, "nothing before it ran"
    record = op.execute(task_context("validate"))  # type: ignore[arg-type]

    lineage = DefaultExtractor(op).extract_on_complete(None)
    assert lineage is not None
    assert ids(lineage.inputs) == [(FILE_NAMESPACE, batches["good"])]
    assert ids(lineage.outputs) == [(FILE_NAMESPACE, str(tmp_path / "docs.html"))]
    quality = as_json(lineage)["inputs"][0]["inputFacets"]
    expectations = json.loads(RAW_SUITE.read_text())["expectations"]
    assertions = quality["dataQualityAssertions"]["assertions"]
    assert sorted(a["assertion"] for a in assertions) == sorted(e["type"] for e in expectations)
    assert all(a["success"] for a in assertions)
    assert quality["dataQualityMetrics"]["rowCount"] == record["row_count"] == 300


def test_a_failed_validation_reports_what_failed_on_failure(
    tmp_path: Path, batches: dict[str, str], task_context: Context
) -> None:
    op = validate(tmp_path, batches["bad"])
    with pytest.raises(AirflowFailException):
        op.execute(task_context("validate"))  # type: ignore[arg-type]

    lineage = DefaultExtractor(op).extract_on_failure(None)
    assert lineage is not None
    assertions = as_json(lineage)["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a.get("column") for a in assertions if not a["success"]} == {"monthly_charges", "plan"}
    assert any(a["success"] for a in assertions)


def test_a_drift_check_reports_reference_and_current_data_and_its_report(tmp_path: Path, task_context: Context) -> None:
    data = write_drift_data(tmp_path / "data", rows=600)
    op = DriftCheckOperator(
        task_id="check_drift", current_uri=data.drifted, reference_uri=data.reference, exclude_columns=NOT_FEATURES,
        report_prefix=str(tmp_path / "report"), storage_conn_id=None,
    )  # fmt: skip
    summary = op.execute({**task_context("check_drift"), "outlet_events": OutletEventAccessors()})  # type: ignore[arg-type]

    lineage = ExtractorManager()._get_extractor(op).extract_on_complete(None)  # the provider's own choice
    assert lineage is not None
    assert ids(lineage.inputs) == [(FILE_NAMESPACE, data.reference), (FILE_NAMESPACE, data.drifted)]
    report = as_json(lineage)["outputs"]
    assert [(d["namespace"], d["name"]) for d in report] == [(FILE_NAMESPACE, summary["report_uri"])]
    verdict = report[0]["facets"][DRIFT_FACET]
    assert verdict["dataset_drift"] is summary["dataset_drift"] is True
    assert verdict["drifted_columns"] == summary["drifted_columns"]


def test_without_the_openlineage_client_the_lineage_is_none(
    tmp_path: Path, batches: dict[str, str], task_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = validate(tmp_path, batches["good"])
    op.execute(task_context("validate"))  # type: ignore[arg-type]
    for module in ("openlineage.client.event_v2", "openlineage.client.facet_v2"):
        monkeypatch.setitem(sys.modules, module, None)  # an import of it raises ImportError
    assert op.get_openlineage_facets_on_complete(None) is None


def test_nothing_of_openlineage_is_imported_with_the_operators() -> None:
    code = """
import sys
import airflow_mlops_provider.operators.drift, airflow_mlops_provider.operators.features
import airflow_mlops_provider.operators.registry, airflow_mlops_provider.operators.validation
print([m for m in sys.modules if m.split(".")[0] == "openlineage" or m.startswith("airflow.providers.openlineage.")])
"""
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    # Airflow's providers manager reads every provider's metadata; nothing else of OpenLineage is loaded.
    assert loaded.stdout.strip() in ("[]", "['airflow.providers.openlineage.get_provider_info']"), loaded.stdout
