"""Alias lookups are light: the hook, the apply guard and the drift trigger's poll load none of the drift
computation (its statistics, Evidently) on top of what the MLflow client itself imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

# Runs in a fresh interpreter, so that sys.modules shows what the lookups themselves import.
PROBE = """
import json, sys
from types import SimpleNamespace
import mlflow.exceptions  # what any MLflow call costs: the baseline
baseline = set(sys.modules)
from airflow_mlops_provider.core.drift.spec import DriftCheckSpec
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.models.lineage import alias_version

class Client:
    def get_model_version_by_alias(self, name, alias):
        return SimpleNamespace(version=7)

version = alias_version(Client(), "churn", "champion")
spec = DriftCheckSpec(current_uri=sys.argv[1], model_name="churn")
fingerprint = spec.inputs_fingerprint(ObjectStore(), Client)
loaded = set(sys.modules)
PACKAGE = "airflow_mlops_provider.core.drift"
drift = [m for m in ("check", "compute", "stats", "report", "pipeline") if f"{PACKAGE}.{m}" in loaded]
heavy = ("evidently", "torch", "feast", "great_expectations")
added = sorted(m for m in loaded - baseline if m.split(".")[0] in heavy)
print(json.dumps({"version": version, "fingerprint": fingerprint, "drift": drift, "heavy": added}))
"""


def test_alias_lookup_and_poll_fingerprint_import_nothing_heavy(tmp_path: Path) -> None:
    (tmp_path / "part-1.parquet").write_bytes(b"not read, only listed")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, f"{tmp_path}/"], capture_output=True, text=True, check=True, cwd=REPO
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["version"] == "7"
    assert len(result["fingerprint"]) == 64
    assert result["drift"] == []
    assert result["heavy"] == []
