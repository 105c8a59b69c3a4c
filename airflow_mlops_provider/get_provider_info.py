"""Provider metadata read by Airflow's providers manager. Keep it import-light: no hook modules here."""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_mlops_provider"


def _string_option(description: str, default: str | None, example: str | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": "string",
        "example": example,
        "default": default,
    }


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: hooks, connection types, operators, links and its config section."""
    from airflow_mlops_provider import __version__
    from airflow_mlops_provider.config import OPTIONS, SECTION

    return {
        "package-name": "airflow-mlops-provider",
        "name": "MLOps (continuous training)",
        "description": "Continuous training on Airflow: Feast features, Great Expectations gates, "
        "GPU training on Kubernetes, MLflow registry and promotion, Evidently drift.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "MLflow", "external-doc-url": "https://mlflow.org/", "tags": ["software"]},
            {"integration-name": "Feast", "external-doc-url": "https://docs.feast.dev/", "tags": ["software"]},
            {
                "integration-name": "Great Expectations",
                "external-doc-url": "https://greatexpectations.io/",
                "tags": ["software"],
            },
            {
                "integration-name": "Evidently",
                "external-doc-url": "https://docs.evidentlyai.com/",
                "tags": ["software"],
            },
        ],
        "hooks": [
            {"integration-name": "MLflow", "python-modules": [f"{PACKAGE}.hooks.mlflow"]},
            {"integration-name": "MLflow", "python-modules": [f"{PACKAGE}.hooks.storage"]},
            {"integration-name": "Feast", "python-modules": [f"{PACKAGE}.hooks.feast"]},
        ],
        "operators": [
            {
                "integration-name": "MLflow",
                "python-modules": [
                    f"{PACKAGE}.operators.training",
                    f"{PACKAGE}.operators.registry",
                    f"{PACKAGE}.operators.approval",
                    f"{PACKAGE}.operators.inference",
                    f"{PACKAGE}.operators.quality",
                ],
            },
            {"integration-name": "Feast", "python-modules": [f"{PACKAGE}.operators.features"]},
            {"integration-name": "Great Expectations", "python-modules": [f"{PACKAGE}.operators.validation"]},
            {"integration-name": "Evidently", "python-modules": [f"{PACKAGE}.operators.drift"]},
        ],
        "sensors": [
            {"integration-name": "Feast", "python-modules": [f"{PACKAGE}.sensors.features"]},
            {"integration-name": "Evidently", "python-modules": [f"{PACKAGE}.sensors.drift"]},
        ],
        "triggers": [
            {"integration-name": "Feast", "python-modules": [f"{PACKAGE}.triggers.features"]},
            {"integration-name": "Evidently", "python-modules": [f"{PACKAGE}.triggers.drift"]},
        ],
        "connection-types": [_connection_type("mlflow"), _connection_type("storage"), _connection_type("feast")],
        "extra-links": [
            f"{PACKAGE}.links.mlflow.MlflowRunLink",
            f"{PACKAGE}.links.mlflow.MlflowModelVersionLink",
            f"{PACKAGE}.links.validation.ValidationDocsLink",
            f"{PACKAGE}.links.drift.DriftReportLink",
        ],
        "config": {
            SECTION: {
                "description": "Settings of the MLOps (continuous training) provider.",
                "options": {name: _string_option(o.description, o.default, o.example) for name, o in OPTIONS.items()},
            }
        },
    }


def _connection_type(module: str) -> dict[str, Any]:
    """Read the declarative connection form from a hook module's source without importing it."""
    import ast
    from pathlib import Path

    source = (Path(__file__).parent / "hooks" / f"{module}.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "CONNECTION_TYPE_INFO" for t in targets):
                assert node.value is not None
                info: dict[str, Any] = ast.literal_eval(node.value)
                return info
    raise LookupError(f"hooks/{module}.py defines no CONNECTION_TYPE_INFO")
