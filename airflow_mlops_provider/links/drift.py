"""Extra link to the drift report a task stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops_provider.links.base import StoredUrlLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlops_provider.hooks.storage import ObjectStorageHook


class DriftReportLink(StoredUrlLink):
    """Opens the drift report (Evidently's HTML when rendered, else the JSON summary)."""

    name = "Drift report"

    @classmethod
    def persist_report(cls, context: Context, report_uri: str, storage_hook: ObjectStorageHook) -> None:
        """Store the browsable URL of a stored report as this task's link.

        :param context: the task's context.
        :param report_uri: where the report was stored.
        :param storage_hook: the storage it was stored through (its endpoint makes the URL).
        """
        from airflow_mlops_provider.core.io.urls import object_url

        cls.persist(context, object_url(report_uri, storage_hook.get_config()))
