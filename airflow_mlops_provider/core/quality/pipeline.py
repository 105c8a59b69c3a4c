"""The live quality check, end to end: join predictions with their labels, recompute the windows, store the
series, judge the champion's newest window, and decide with the episode policy whether decay is signalled.

Bad input fails before anything is written. The MLflow metrics are logged before the series is stored,
and the episode state is saved last: a check killed in between is done again by its retry, which, as the
claimant that fired, gets the same decision again (one event per decay episode).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_mlops_provider.contracts import PredictionColumn, QualityResult
from airflow_mlops_provider.core.drift.episodes import EpisodeStateFile
from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.core.models.metrics import METRICS_BY_PROBLEM
from airflow_mlops_provider.core.quality.series import (
    Col,
    changed_rows,
    join_labels,
    merge_series,
    parse_window,
    read_columns,
    utc_times,
    window_series,
)
from airflow_mlops_provider.core.quality.tracking import log_live_metrics
from airflow_mlops_provider.failpoints import failpoint

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_mlops_provider.core.io.storage import ObjectStore
    from airflow_mlops_provider.core.quality.champion import Champion
    from airflow_mlops_provider.core.quality.policy import QualityPolicy

log = logging.getLogger(__name__)
#: Window rows a result lists at most (the newest); the stored series has them all.
RESULT_WINDOWS = 50


class NoPredictionsError(LookupError):
    """There are no predictions to judge: no file under the predictions URI."""


class Verdict:
    """The verdict on one window of the champion."""

    OK = "ok"
    DECAYED = "decayed"
    INSUFFICIENT = "insufficient labels"
    UNDEFINED = "metric undefined"
    JUDGED = (OK, DECAYED)


@dataclass(frozen=True)
class QualitySpec:
    """One live quality check of a model.

    :param model_name: the registered model.
    :param predictions_uri: its predictions: a file or a ``/``-terminated prefix (one file per inference run).
    :param labels_uri: the labels: a file or a prefix of parquet/CSV files.
    :param label_column: the label column of the labels.
    :param entity_columns: the entity key, in both.
    :param time_column: the event time, in both.
    :param window: the window length (``"1D"``, ``"6h"`` or seconds), aligned on the epoch.
    :param lookback: recompute only the windows of predictions newer than this before now; ``None``: all.
    :param series_uri: the stored series (parquet).
    :param state_uri: the episode state (JSON); ``None``: in memory, every decayed check fires.
    :param episode_policy: debounce, clear_after, cooldown and cap of decay events.
    :raises ValueError: no entity column, or a window or lookback that is not a positive duration.
    """

    model_name: str
    predictions_uri: str
    labels_uri: str
    label_column: str
    entity_columns: Sequence[str]
    series_uri: str
    time_column: str = "event_timestamp"
    window: str = "1D"
    lookback: str | None = None
    state_uri: str | None = None
    episode_policy: EpisodePolicy = field(default_factory=EpisodePolicy)

    def __post_init__(self) -> None:
        if not self.entity_columns:
            raise ValueError("a quality check needs the entity column(s) that join predictions with labels")
        parse_window(self.window)
        if self.lookback:
            parse_window(self.lookback)


@dataclass(frozen=True)
class QualityOutcome:
    """What a check found and decided.

    :param result: the task's result.
    :param fired: whether a decay event is due now.
    :param series: the stored series.
    """

    result: QualityResult
    fired: bool
    series: pd.DataFrame


def run_quality_check(
    spec: QualitySpec,
    policy: QualityPolicy,
    champion: Champion,
    store: ObjectStore,
    mlflow_client: MlflowClient | None = None,
    *,
    now: float | None = None,
    states: EpisodeStateFile | None = None,
    claimant: str | None = None,
) -> QualityOutcome:
    """Recompute the live quality windows of ``spec``'s predictions, store them, and judge the champion.

    The champion's newest window with at least ``policy.min_labels`` labels (and a defined metric) is
    judged against the floor; its content id (labelled rows) is the episode's window, so a window judged
    again with new labels counts as a new verdict, and an unchanged one is not judged twice.

    :param spec: what to read and where to store.
    :param policy: the floor and the labels a verdict needs.
    :param champion: the version judged (the episode's reference) and its holdout score.
    :param store: the store every URI is read and written through.
    :param mlflow_client: with one, new or changed windows are logged as ``live_*`` metrics of their
        versions' runs.
    :param now: epoch seconds; by default the current time.
    :param states: the episode state; by default the one at ``spec.state_uri`` (else in memory).
    :param claimant: who runs the check (a task instance); its retry gets the decision it took.
    :raises ValueError: a floor that needs a holdout score the champion lacks, or unusable data.
    :raises NoPredictionsError: no predictions under ``spec.predictions_uri``.
    """
    now = time.time() if now is None else now
    window = parse_window(spec.window)
    holdout = champion.holdout_score_in(policy.metric)
    try:
        floor = policy.floor(holdout)
    except ValueError as err:
        raise ValueError(
            f"{err}: version {champion.version} of {champion.model_name} records its holdout "
            f"{champion.holdout_metric or 'score'} as {champion.holdout_score}; set min_value instead, or use "
            f"metric={champion.holdout_metric!r}"
        ) from err
    metric_names = METRICS_BY_PROBLEM[champion.problem_type]
    recomputed = _recompute(spec, store, window, champion.problem_type, now)
    previous = _stored_series(spec.series_uri, store)
    changed = changed_rows(previous, recomputed, [Col.PREDICTIONS, Col.LABELS, *metric_names])
    series = merge_series(previous, recomputed)

    verdicts = _verdicts(series, champion.version, policy, floor)
    judged = verdicts[verdicts["verdict"].isin(Verdict.JUDGED)]
    result = QualityResult(
        model_name=spec.model_name,
        version=champion.version,
        metric=policy.metric,
        series_uri=spec.series_uri,
        floor=floor,
        holdout_score=holdout,
        windows=_listed(recomputed, verdicts),
        decayed=False,
        fire=False,
        value=None,
        window=None,
    )
    states = states or EpisodeStateFile(spec.state_uri, store)
    state = states.load()
    if judged.empty:
        result["reason"] = result["episode"] = (
            f"no window of version {champion.version} has {policy.min_labels} labels yet: no verdict"
        )
    else:
        latest = judged.iloc[-1]
        value, decayed = float(latest[policy.metric]), latest["verdict"] == Verdict.DECAYED
        bound = "at least" if policy.sign > 0 else "at most"
        result["value"], result["window"], result["decayed"] = value, str(latest[Col.WINDOW_START]), bool(decayed)
        result["reason"] = (
            f"{policy.metric}={value:.4f} on {int(latest[Col.LABELS])} labels of the window from "
            f"{latest[Col.WINDOW_START]} ({latest[Col.COVERAGE]:.0%} labelled): "
            f"{'below' if decayed else 'meets'} the floor ({bound} {floor:.4f})"
        )
        window_id = f"{latest[Col.WINDOW_START]}/{latest[Col.WINDOW_ID]}"
        decision = state.observe(
            spec.episode_policy, champion.version, window_id, bool(decayed), now, claimant, subject="decay"
        )
        result["fire"], result["episode"] = decision.fire, decision.reason
    log.info("Live quality of %s v%s: %s; %s", spec.model_name, champion.version, result["reason"], result["episode"])

    if mlflow_client is not None and not changed.empty:
        logged = log_live_metrics(mlflow_client, spec.model_name, changed, metric_names, int(now * 1000))
        log.info("Logged %d live metric values of %d windows to MLflow", logged, len(changed))
    if not changed.empty or previous is None:
        write_dataset(series, spec.series_uri, store)
    states.save(state)
    failpoint("quality.after_episode_update")  # saved, but the caller has not emitted the event yet
    return QualityOutcome(result, bool(result["fire"]), series)


def _recompute(
    spec: QualitySpec, store: ObjectStore, window: pd.Timedelta, problem_type: str, now: float
) -> pd.DataFrame:
    """The series rows of the predictions in the lookback, joined with the labels known now."""
    keys = [*spec.entity_columns, spec.time_column]
    try:
        predictions = read_columns(
            spec.predictions_uri,
            [*keys, PredictionColumn.PREDICTION, PredictionColumn.MODEL_VERSION],
            store,
            optional=[PredictionColumn.SCORED_AT],
        )
    except FileNotFoundError as err:
        raise NoPredictionsError(f"no predictions of {spec.model_name!r} under {spec.predictions_uri}: {err}") from err
    times = utc_times(predictions[spec.time_column], spec.time_column)
    if spec.lookback:
        since = pd.Timestamp(now, unit="s", tz="UTC") - parse_window(spec.lookback)
        keep = times >= since.floor(window)  # whole windows
        predictions, times = predictions[keep], times[keep]
    predictions = predictions.assign(**{spec.time_column: times})
    try:
        labels = read_columns(spec.labels_uri, [*keys, spec.label_column], store)
    except FileNotFoundError:
        log.info("No labels under %s yet", spec.labels_uri)
        labels = pd.DataFrame({column: pd.Series(dtype="object") for column in [*keys, spec.label_column]})
        labels[spec.time_column] = pd.Series(dtype="datetime64[ns, UTC]")
    if predictions.empty:
        return pd.DataFrame(columns=[*Col.KEY])
    joined = join_labels(predictions, labels, spec.entity_columns, spec.time_column, spec.label_column)
    return window_series(joined, spec.time_column, window, problem_type)


def _stored_series(uri: str, store: ObjectStore) -> pd.DataFrame | None:
    try:
        return read_dataset(uri, store=store)
    except FileNotFoundError:
        return None


def _verdicts(series: pd.DataFrame, version: str, policy: QualityPolicy, floor: float) -> pd.DataFrame:
    """The champion's windows, oldest first, each with its verdict."""
    if series.empty or policy.metric not in series.columns:
        return pd.DataFrame(columns=[*Col.KEY, "verdict"])
    rows = series[series[Col.VERSION].astype(str) == version].sort_values(Col.WINDOW_START)

    def verdict(row: pd.Series) -> str:
        if row[Col.LABELS] < policy.min_labels:
            return Verdict.INSUFFICIENT
        value = float(row[policy.metric])
        if math.isnan(value):
            return Verdict.UNDEFINED
        return Verdict.OK if policy.meets(value, floor) else Verdict.DECAYED

    return rows.assign(verdict=rows.apply(verdict, axis=1) if len(rows) else pd.Series(dtype=str))


def _listed(recomputed: pd.DataFrame, verdicts: pd.DataFrame) -> list[dict[str, Any]]:
    """The recomputed rows (the newest :data:`RESULT_WINDOWS`) as JSON-able dicts, the champion's with a verdict."""
    if recomputed.empty:
        return []
    rows = recomputed.merge(verdicts[[*Col.KEY, "verdict"]], on=list(Col.KEY), how="left").tail(RESULT_WINDOWS)
    return [
        {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
        for row in rows.astype(object).to_dict(orient="records")
    ]
