"""The drift check, end to end: one function that the operator, the sensor and the trigger's child process
all run.

Reference set, current window, window id (content digest), comparison, episode decision, summary, report,
and last the episode state: saved after the report, so that a check whose report failed is judged again.
A check killed after saving the state, before its caller emitted the event, is retried by the same
claimant (a task instance), which gets the same decision again: one event per episode.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from airflow_mlops_provider.core.drift.check import (
    EmptyWindowError,
    ReferenceSet,
    aliased_training_set,
    compare,
    drift_summary,
    load_window,
)
from airflow_mlops_provider.core.drift.compute import listed
from airflow_mlops_provider.core.drift.episodes import EpisodeStateFile
from airflow_mlops_provider.core.drift.predictions import current_predictions, holdout_predictions, prediction_drift
from airflow_mlops_provider.core.drift.report import render_report, store_report
from airflow_mlops_provider.core.drift.spec import (
    DriftCheckSpec,
    DriftOutcome,
    NoCurrentDataError,
    NothingToCheckError,
    WindowAlreadyJudgedError,
)
from airflow_mlops_provider.core.io.datasets import dataset_digest
from airflow_mlops_provider.core.models.lineage import AliasNotSetError
from airflow_mlops_provider.failpoints import failpoint

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from airflow_mlops_provider.core.io.storage import ObjectStore

log = logging.getLogger(__name__)


def run_drift_check(
    spec: DriftCheckSpec,
    store: ObjectStore,
    mlflow_client: Callable[[], MlflowClient],
    *,
    now: float | None = None,
    states: EpisodeStateFile | None = None,
    claimant: str | None = None,
) -> DriftOutcome:
    """Check ``spec``'s current window against its reference, store the report, and decide whether to signal.

    :param spec: what to compare, how, and where the state and the report live.
    :param store: the store every URI is read and written through.
    :param mlflow_client: builds the MLflow client; called only when the reference is a model's training set.
    :param now: the time of the episode decision, epoch seconds; by default the current time.
    :param states: the episode state to use; by default the one at ``spec.state_uri``, if any (a sensor
        without one keeps its state in memory across pokes).
    :param claimant: who runs the check, e.g. a task instance's ``dag/run/task/map index``: when it fired for
        this window already (and was killed before its event was emitted), its retry fires again.
    :raises NothingToCheckError: no version has the alias, or no current data or row in the window yet; with
        ``spec.event_only``, also a window already judged against this reference.
    :raises LookupError: the model version has no lineage tag.
    :raises ValueError: a changed reference (digest), no column to compare, or an untestable column.
    """
    reference = _reference(spec, mlflow_client)
    current = _current_window(spec, store)
    window_id = dataset_digest(current)
    predicted = None
    if spec.predictions_uri:
        predicted = _current_predictions(spec, store, reference.model_version)
        window_id = hashlib.sha256(f"{window_id}/{dataset_digest(predicted)}".encode()).hexdigest()[:16]
    if states is None and spec.state_uri:
        states = EpisodeStateFile(spec.state_uri, store)
    state = None if states is None else states.load()
    if spec.event_only and state is not None and not state.is_new(reference.key, window_id):
        raise WindowAlreadyJudgedError(f"window {window_id} was already judged against {reference.key}")
    reference_frame = reference.load(store)
    excluded = [spec.window.time_column, *spec.exclude_columns]
    result = compare(reference, reference_frame, current, spec.drift_config, spec.columns, excluded)
    summary = drift_summary(reference, spec.current_uri, window_id, result)
    drifted = result.dataset_drift
    if predicted is not None:
        verdict = prediction_drift(holdout_predictions(reference, store), predicted, spec.drift_config)
        summary["prediction_drift"] = asdict(verdict)
        drifted = drifted or verdict.drifted
    fired, reason = drifted, "drift" if drifted else "no drift"
    if state is not None:
        decision = state.observe(
            spec.episode_policy,
            reference.key,
            window_id,
            drifted,
            time.time() if now is None else now,
            claimant,
        )
        fired, reason = decision.fire, decision.reason
        summary["episode"] = reason
    log.info(
        "Window %s of %s: %d/%d columns drifted %s; %s",
        window_id, spec.current_uri, len(result.drifted_columns), len(result.columns), listed(result.drifted_columns),
        reason,
    )  # fmt: skip
    if spec.report_prefix and (fired or not spec.event_only):
        rendered = None
        if drifted or spec.always_report:
            rendered = render_report(reference_frame, current, result, spec.drift_config)
        prefix = spec.report_prefix.rstrip("/")
        stored = store_report(store, f"{prefix}/{window_id}" if spec.report_per_window else prefix, summary, rendered)
        summary["report_uri"] = stored.main_uri
    if states is not None and state is not None:
        states.save(state)
        failpoint("drift.after_episode_update")  # saved, but the caller has not emitted the event yet
    return DriftOutcome(summary, fired, reason)


def _reference(spec: DriftCheckSpec, mlflow_client: Callable[[], MlflowClient]) -> ReferenceSet:
    """``spec.reference_uri``, else the training set of the model's aliased version."""
    if spec.reference_uri:
        return ReferenceSet(uri=spec.reference_uri, split_value=spec.split_value, model_name=spec.model_name)
    assert spec.model_name is not None  # checked at construction
    try:
        return aliased_training_set(mlflow_client(), spec.model_name, spec.model_alias, spec.split_value)
    except AliasNotSetError as err:
        raise NothingToCheckError(str(err)) from err


def _current_window(spec: DriftCheckSpec, store: ObjectStore) -> pd.DataFrame:
    """The rows of the current data in the spec's window."""
    window = spec.window
    try:
        return load_window(
            spec.current_uri, store, window.time_column, window.start or None, window.end or None, window.lookback
        )
    except FileNotFoundError as err:
        raise NoCurrentDataError(str(err)) from err
    except EmptyWindowError as err:
        raise NothingToCheckError(str(err)) from err


def _current_predictions(spec: DriftCheckSpec, store: ObjectStore, version: str | None) -> pd.DataFrame:
    """The reference version's predictions in the spec's window."""
    assert spec.predictions_uri is not None
    try:
        return current_predictions(spec.predictions_uri, store, spec.window, version)
    except FileNotFoundError as err:
        raise NoCurrentDataError(str(err)) from err
    except EmptyWindowError as err:
        raise NothingToCheckError(str(err)) from err
