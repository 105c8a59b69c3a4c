"""Extra link to the Data Docs page of a data validation task."""

from __future__ import annotations

from airflow_mlops_provider.links.base import StoredUrlLink


class ValidationDocsLink(StoredUrlLink):
    """Opens the Great Expectations Data Docs page a validation task stored."""

    name = "Data Docs"
