"""Extra links to MLflow runs and model versions."""

from __future__ import annotations

from airflow_mlops_provider.links.base import StoredUrlLink


class MlflowRunLink(StoredUrlLink):
    """Opens the MLflow run a task created or used."""

    name = "MLflow run"


class MlflowModelVersionLink(StoredUrlLink):
    """Opens the registered model version a task registered or promoted."""

    name = "MLflow model version"
