"""Extra link to the drift report a task stored."""

from __future__ import annotations

from airflow_mlops_provider.links.base import StoredUrlLink


class DriftReportLink(StoredUrlLink):
    """Opens the drift report (Evidently's HTML when rendered, else the JSON summary)."""

    name = "Drift report"
