"""The live quality series in MLflow: each window's metrics on the run of the version that scored it, so
the MLflow UI charts live quality beside the training curves.

The object-store series is the source of truth (MLflow's metric history only appends); a window's
metrics are logged when they are new or changed, at ``step`` = the window's index since the epoch and
``timestamp`` = when they were computed, so a recomputed window (late labels) has a newer value at the
same step, and a run's latest value is its newest window's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_mlops_provider.core.quality.series import Col

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

#: The prefix of live metric keys: ``live_roc_auc``, ``live_label_coverage``...
PREFIX = "live_"
#: MLflow's limit of metrics per ``log_batch`` call.
_BATCH = 1000


def live_key(name: str) -> str:
    """The MLflow metric key of a series column, e.g. ``live_roc_auc``.

    :param name: a metric name or a series column.
    """
    return f"{PREFIX}{name}"


def log_live_metrics(
    client: MlflowClient, model_name: str, rows: pd.DataFrame, metric_names: Sequence[str], timestamp_ms: int
) -> int:
    """Log ``rows`` (series rows) as metrics of the runs of their versions; return how many were logged.

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param rows: the new or changed series rows.
    :param metric_names: the metric columns to log (NaN values are left out), besides the counts and coverage.
    :param timestamp_ms: when they were computed, epoch milliseconds.
    """
    from mlflow.entities import Metric

    logged = 0
    for version, group in rows.groupby(Col.VERSION):
        run_id = client.get_model_version(model_name, str(version)).run_id
        if not run_id:
            continue
        metrics = [
            Metric(live_key(name), float(row[name]), timestamp_ms, int(row[Col.STEP]))
            for _, row in group.iterrows()
            for name in (*metric_names, Col.COVERAGE, Col.LABELS, Col.PREDICTIONS)
            if not math.isnan(float(row[name]))
        ]
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
        logged += len(metrics)
    return logged
