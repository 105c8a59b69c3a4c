"""The OpenLineage events of the prod demo's story, as Airflow's OpenLineage provider wrote them (the file
transport of ``demo/stack.py``: one JSON file per event under ``<AIRFLOW_HOME>/logs/openlineage/``).

The COMPLETE events must make one graph with stable names: batch → feature view → training set → the run's
model → model version, and model version + its training set + the feature view → drift report; the gates
carry their data-quality facets, the promotion its decision, and no event a secret of the stack.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops_provider.openlineage_facets import (
    DRIFT_FACET,
    PROMOTION_FACET,
    DatasetId,
    feature_view_dataset,
    mlflow_namespace,
    storage_dataset,
)
from tests.e2e.story import DEMO_TIMEOUT, LiveDemo, check_story

# The first test of a run of this module alone starts the shared demo (the package's ``live`` fixture).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(DEMO_TIMEOUT + 300)]

INGESTION, TRAINING, DRIFT = "feature_ingestion", "continuous_training", "drift_monitor"
VIEW = "customer_stats"
Event = dict[str, Any]


@pytest.fixture(scope="module")
def events(stack: dict[str, Any]) -> list[Event]:
    """Every event of the story, in the order written."""
    folder = Path(stack["airflow"]["home"]) / "logs" / "openlineage"
    return [json.loads(path.read_text()) for path in sorted(folder.glob("events-*.json"))]


@pytest.fixture(scope="module")
def completed(events: list[Event]) -> dict[str, list[Event]]:
    """The COMPLETE events of tasks (a skipped task's too), by ``<dag_id>.<task_id>``, in order."""
    by_job: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event["eventType"] == "COMPLETE" and "." in event["job"]["name"]:
            by_job[event["job"]["name"]].append(event)
    return by_job


def ids(datasets: list[dict[str, Any]]) -> list[DatasetId]:
    return [DatasetId(dataset["namespace"], dataset["name"]) for dataset in datasets]


def dag_run(event: Event) -> str:
    return str(event["run"]["facets"]["airflow"]["dagRun"]["run_id"])


def one(datasets: list[dict[str, Any]], dataset: DatasetId) -> dict[str, Any]:
    """The dataset named ``dataset`` among ``datasets``."""
    found = [d for d in datasets if (d["namespace"], d["name"]) == dataset]
    assert len(found) == 1, (dataset, ids(datasets))
    return found[0]


def test_batches_feed_the_feature_view_and_the_gate_reports_data_quality(
    stack: dict[str, Any], completed: dict[str, list[Event]]
) -> None:
    view = feature_view_dataset(stack["feast_config"]["project"], VIEW)
    ingested = []
    for event in completed[f"{INGESTION}.ingest_chunk.ingest_batches"]:
        for batch in ids(event["inputs"]):
            assert batch.namespace == f"s3://{stack['s3']['bucket']}" and batch.name.startswith("landing/"), batch
            ingested.append(batch)
        assert ids(event["outputs"]) == [view]
        assert {"customer_id", "event_timestamp", "usage_gb"} <= {
            field["name"] for field in event["outputs"][0]["facets"]["schema"]["fields"]
        }
    assert len(ingested) >= 4 and len(set(ingested)) == len(ingested), ingested
    outcomes = []
    for event in completed[f"{INGESTION}.ingest_chunk.validate_batches"]:
        for checked in event["inputs"]:
            assertions = checked["inputFacets"]["dataQualityAssertions"]["assertions"]
            outcomes.append(all(assertion["success"] for assertion in assertions))
            assert checked["inputFacets"]["dataQualityMetrics"]["rowCount"] > 0
    assert outcomes.count(False) == 1, "the quarantined batch failed its expectations"
    assert outcomes.count(True) == len(ingested), "every batch that passed was ingested"


def test_training_sets_model_versions_and_drift_reports_make_one_graph(
    stack: dict[str, Any], completed: dict[str, list[Event]], live: tuple[LiveDemo, Path]
) -> None:
    view = feature_view_dataset(stack["feast_config"]["project"], VIEW)
    mlflow = mlflow_namespace(stack["mlflow"]["url"])
    runs: dict[str, dict[str, Event]] = defaultdict(dict)
    for task in ("training_set", "validate_training_set", "train_model", "register_model", "promote_model"):
        for event in completed[f"{TRAINING}.{task}"]:
            runs[dag_run(event)][task] = event
    assert len(runs) == 2, "the first training and the retraining on drift"
    trained_on: dict[DatasetId, DatasetId] = {}  # model version → its training set
    digests: dict[DatasetId, str] = {}
    for run in runs.values():
        (training_set,) = ids(run["training_set"]["outputs"])
        assert view in ids(run["training_set"]["inputs"])
        facets = run["training_set"]["outputs"][0]["facets"]
        digests[training_set] = facets["version"]["datasetVersion"]
        assert {"customer_id", "churned", "split"} <= {field["name"] for field in facets["schema"]["fields"]}
        gate = one(run["validate_training_set"]["inputs"], training_set)
        assert all(a["success"] for a in gate["inputFacets"]["dataQualityAssertions"]["assertions"])
        # The training set of this run is the input of the model version it produced, with the same digest.
        registered = run["register_model"]
        (version,) = ids(registered["outputs"])
        assert version.namespace == mlflow and version.name.startswith("models/churn/versions/"), version
        read = one(registered["inputs"], training_set)
        assert read["facets"]["version"]["datasetVersion"] == digests[training_set]
        logged = [d for d in ids(registered["inputs"]) if d != training_set]
        assert [d.namespace for d in logged] == [mlflow] and logged[0].name.startswith("models:/"), logged
        # Training read the training set and produced the model the registration read.
        assert ids(run["train_model"]["inputs"]) == [training_set] and ids(run["train_model"]["outputs"]) == logged
        decision = run["promote_model"]["run"]["facets"][PROMOTION_FACET]
        assert isinstance(decision["promote"], bool) and decision["reason"], decision
        assert version.name == f"models/churn/versions/{decision['version']}"
        assert {version, training_set} <= set(ids(run["promote_model"]["inputs"])), "challenger and holdout"
        trained_on[version] = training_set
    assert len(trained_on) == 2

    # The check that found drift compared the champion version (and its training set) with the feature view.
    reports = [event for event in completed[f"{DRIFT}.check_drift"] if event["outputs"]]
    printed = storage_dataset(check_story(live[0].output)["report"])
    (drifted,) = [event for event in reports if ids(event["outputs"]) == [printed]]
    version, reference, current = ids(drifted["inputs"])
    assert (reference, current) == (trained_on[version], view)
    assert drifted["inputs"][1]["facets"]["version"]["datasetVersion"] == digests[reference]
    verdict = drifted["outputs"][0]["facets"][DRIFT_FACET]
    assert verdict["dataset_drift"] is True and verdict["drifted_columns"]


def test_no_event_carries_a_secret(stack: dict[str, Any], events: list[Event]) -> None:
    secrets = [
        stack["s3"]["AWS_ACCESS_KEY_ID"],
        stack["s3"]["AWS_SECRET_ACCESS_KEY"],
        stack["airflow"]["credentials"][1],
    ]
    assert events
    leaked = [secret for secret in secrets if any(secret in json.dumps(event) for event in events)]
    assert leaked == []
