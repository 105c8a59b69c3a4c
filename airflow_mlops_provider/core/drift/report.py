"""The drift report: Evidently's full HTML and JSON, rendered on demand, and the stored summary.

Evidently's ``DataDriftPreset`` recomputes every column and renders Plotly figures, so it runs only
when drift was found or a report is asked for; the summary of
:func:`~airflow_mlops_provider.core.drift.compute.compute_drift` is always stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from airflow_mlops_provider._optional import import_optional
from airflow_mlops_provider.contracts import DriftSummary
from airflow_mlops_provider.core.drift.compute import DriftResult
from airflow_mlops_provider.core.drift.methods import NUMERIC
from airflow_mlops_provider.core.drift.spec import DriftConfig
from airflow_mlops_provider.core.io.storage import ObjectStore

SUMMARY_NAME = "drift_summary.json"
HTML_NAME = "drift_report.html"
JSON_NAME = "drift_report.json"


@dataclass(frozen=True)
class StoredReport:
    """Where a drift report was written.

    :param summary_uri: the JSON summary, always written.
    :param html_uri: Evidently's HTML report, when rendered.
    :param json_uri: Evidently's JSON snapshot, when rendered.
    """

    summary_uri: str
    html_uri: str | None = None
    json_uri: str | None = None

    @property
    def main_uri(self) -> str:
        """The HTML report if rendered, else the summary."""
        return self.html_uri or self.summary_uri


def render_report(
    reference: pd.DataFrame, current: pd.DataFrame, result: DriftResult, config: DriftConfig
) -> tuple[str, str]:
    """Run Evidently's ``DataDriftPreset`` (with per-column tests) on the result's columns.

    The settings are the ones that produced ``result`` and the column kinds are passed explicitly, so the
    report shows the same tests and verdicts.

    :param reference: the reference frame.
    :param current: the current frame.
    :param result: the verdicts to report on.
    :param config: the settings that produced them.
    :return: the standalone HTML page and the JSON snapshot.
    """
    evidently = import_optional("evidently", extra="evidently")
    presets = import_optional("evidently.presets", extra="evidently")
    columns = [c.column for c in result.columns]
    definition = evidently.DataDefinition(
        numerical_columns=[c.column for c in result.columns if c.kind == NUMERIC],
        categorical_columns=[c.column for c in result.columns if c.kind != NUMERIC],
    )
    preset = presets.DataDriftPreset(
        columns=columns,
        drift_share=config.drift_share,
        method=config.method,
        num_method=config.num_method,
        cat_method=config.cat_method,
        per_column_method=dict(config.per_column_method) or None,
        threshold=config.threshold,
        num_threshold=config.num_threshold,
        cat_threshold=config.cat_threshold,
        per_column_threshold=dict(config.per_column_threshold) or None,
    )
    report = evidently.Report([preset], include_tests=True)
    snapshot = report.run(  # current first
        evidently.Dataset.from_pandas(current[columns], data_definition=definition),
        evidently.Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    return snapshot.get_html_str(as_iframe=False), snapshot.json()


def store_report(
    store: ObjectStore, prefix: str, summary: DriftSummary, rendered: tuple[str, str] | None = None
) -> StoredReport:
    """Write the summary, and the rendered report if any, under ``prefix``.

    :param store: where to write.
    :param prefix: a local directory or ``s3://`` prefix; files are named ``drift_summary.json``,
        ``drift_report.html`` and ``drift_report.json``.
    :param summary: the JSON-serializable summary.
    :param rendered: the HTML and JSON of :func:`render_report`.
    """
    base = prefix.rstrip("/")
    stored = StoredReport(summary_uri=f"{base}/{SUMMARY_NAME}")
    store.write_bytes(stored.summary_uri, json.dumps(summary, indent=2, sort_keys=True).encode())
    if rendered is None:
        return stored
    stored = StoredReport(stored.summary_uri, f"{base}/{HTML_NAME}", f"{base}/{JSON_NAME}")
    for uri, text in zip((stored.html_uri, stored.json_uri), rendered, strict=True):
        store.write_bytes(str(uri), text.encode())
    return stored
