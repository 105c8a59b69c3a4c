"""Run the continuous-training loop end to end on one machine (``make demo``).

Starts ``mlflow server`` and ``airflow standalone`` on free loopback ports with all state under
``DEMO_HOME`` (default ``<repo>/.demo``, wiped at start), and tells the story of the churn model:

1. Two weeks of raw batches land, one of them corrupt. ``feature_ingestion`` quarantines the corrupt
   batch (with its Data Docs) and ingests the others into Feast; ``drift_monitor`` runs on the new data
   and skips, as there is no champion yet.
2. ``continuous_training`` (triggered here) trains on a point-in-time Feast training set; version 1
   becomes champion.
   The new champion starts ``batch_inference``: it scores the recent customers with features from the
   Feast online store, and ``model_quality`` joins those predictions with their churn labels: the live
   quality series.
3. A week of drifted batches lands and is ingested. The champion scores it; ``drift_monitor`` finds the
   drift and emits the ``churn_drift`` asset event, and the scheduler retrains on it (or on
   ``churn_quality_decay``, when the live quality fell): no script triggers that run. The new version is
   promoted or rejected, with the reason; a new champion scores again.

It ends with the rows each version scored, the live quality series, the champion history (every alias
move, when, by whom and why), the model registry (versions, lineage, champion and why) and the UIs' URLs. The DAGs keep
their schedules; one that fires meanwhile is joined or ignored, never mistaken for the story's runs.

Environment:
    DEMO_PROFILE      ``embedded`` (default): SQLite, ``airflow standalone``, local data; needs nothing else.
                      ``prod``: PostgreSQL, Redis, Celery workers, MLflow and data in S3 (``demo/prod.py``).
    DEMO_HOME         state directory (default ``<repo>/.demo``).
    DEMO_EXIT=1       stop everything and exit when done: 0 only if the whole loop completed.
                      Otherwise the servers stay up until Ctrl-C.
    DEMO_DAGS_FOLDER  DAGs folder to serve (default ``<repo>/dags``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from airflow_mlops_provider.config import DataFolder
from airflow_mlops_provider.contracts import (
    CHAMPION,
    PROMOTED,
    REJECTED,
    BatchesValidation,
    DriftSummary,
    InferenceResult,
    PromotionRecord,
    QualityResult,
    Tag,
    TrainingSetResult,
    ValidationRecord,
)
from airflow_mlops_provider.core.io.datasets import is_dataset_file, write_dataset
from airflow_mlops_provider.core.io.storage import is_s3_uri
from airflow_mlops_provider.core.models.history import format_history, read_history
from airflow_mlops_provider.core.models.lineage import filter_value
from demo import embedded, prod
from demo.api import AirflowApi
from demo.data import generate_batch
from demo.processes import ManagedProcess, Resource, StackError, wait_for
from demo.runs import DemoError, log_lines, run_ids, run_to_end, task_label, wait_for_new_run
from demo.stack import Stack

from churn_common import MODEL_NAME

REPO = Path(__file__).resolve().parents[1]
INGESTION_DAG = "feature_ingestion"
TRAINING_DAG = "continuous_training"
DRIFT_DAG = "drift_monitor"
INFERENCE_DAG = "batch_inference"
QUALITY_DAG = "model_quality"
#: The DAGs of the story, unpaused by the demo. drift_watch (the AssetWatcher form of the drift check)
#: stays paused, so that one detector drives retraining.
STORY_DAGS = (INGESTION_DAG, TRAINING_DAG, DRIFT_DAG, INFERENCE_DAG, QUALITY_DAG)
#: The DAGs whose runs the story lets finish before it reads the registry (ingestion waits for batches).
SETTLED_DAGS = (TRAINING_DAG, INFERENCE_DAG, QUALITY_DAG)
METRIC = "roc_auc"
#: The version tags the summary shows: lineage, and the promotion decision.
LINEAGE_TAGS = (Tag.FEATURE_SERVICE, Tag.DATA_WINDOW, Tag.DATASET_DIGEST)
SHOWN_TAGS = (*LINEAGE_TAGS, *Tag.PROMOTION_TAGS)
#: The story's tasks, found by operator class (their task ids are the DAGs' business).
DRIFT_CHECK = "DriftCheckOperator"
VALIDATION = "DataValidationOperator"
INGESTION = "FeatureIngestionOperator"
TRAINING_SET = "TrainingDatasetOperator"
PROMOTION = "PromoteModelOperator"
INFERENCE = "BatchInferenceOperator"
QUALITY = "ModelQualityOperator"
MARKER_FILE = ".demo-state"
DAG_PARSE_TIMEOUT = 180.0
#: How long the scheduler may take to start a run on an asset event.
ASSET_RUN_TIMEOUT = 180.0
# Short: a scheduler stopped soon after it started can hang on its idle LocalExecutor workers, and the
# SQLite state is throwaway, so waiting longer gains nothing.
AIRFLOW_STOP_GRACE = 10.0
OTHER_STOP_GRACE = 10.0
#: The profiles by name: each starts its servers and returns the running stack.
PROFILES = {embedded.PROFILE: embedded.launch, prod.PROFILE: prod.launch}


@dataclass(frozen=True)
class Settings:
    """What the environment asks of the demo."""

    profile: str
    home: Path
    dags_folder: Path
    exit_when_done: bool

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``DEMO_PROFILE``, ``DEMO_HOME``, ``DEMO_DAGS_FOLDER`` and ``DEMO_EXIT``."""
        profile = os.environ.get("DEMO_PROFILE") or embedded.PROFILE
        if profile not in PROFILES:
            raise DemoError(f"DEMO_PROFILE={profile!r} is not a profile; choose one of {', '.join(PROFILES)}")
        return cls(
            profile=profile,
            home=Path(os.environ.get("DEMO_HOME") or REPO / ".demo").resolve(),
            dags_folder=Path(os.environ.get("DEMO_DAGS_FOLDER") or REPO / "dags").resolve(),
            exit_when_done=os.environ.get("DEMO_EXIT", "") not in ("", "0"),
        )


@dataclass(frozen=True)
class Batch:
    """A raw batch of generated churn rows (``days`` days from ``start``) as a source system delivers it.

    :param name: the file name without suffix, which becomes the batch id.
    :param corrupt: a broken feed: an unknown plan and negative charges on every tenth row.
    """

    name: str
    start: date
    days: int
    rows: int
    seed: int
    covariate_drift: float = 0.0
    concept_drift: float = 0.0
    corrupt: bool = False

    def frame(self) -> pd.DataFrame:
        """Generate the batch's rows."""
        frame = generate_batch(
            self.rows,
            self.start,
            days=self.days,
            seed=self.seed,
            covariate_drift=self.covariate_drift,
            concept_drift=self.concept_drift,
        )
        if self.corrupt:
            broken = frame.index[::10]
            frame.loc[broken, "plan"] = "platinum"
            frame.loc[broken, "monthly_charges"] = -frame.loc[broken, "monthly_charges"]
        return frame


def history(today: date) -> list[Batch]:
    """Four 3-day batches from 20 to 8 days ago, and one corrupt partner feed.

    :param today: the demo's day.
    """
    starts = [today - timedelta(days=20 - 3 * number) for number in range(4)]
    batches = [Batch(f"customers_{start:%Y%m%d}", start, 3, 2_500, seed) for seed, start in enumerate(starts, 1)]
    partner = today - timedelta(days=10)
    return [*batches, Batch(f"partner_feed_{partner:%Y%m%d}", partner, 1, 500, seed=9, corrupt=True)]


def drifted(today: date) -> list[Batch]:
    """Two 3-day batches of the last 6 days, after the market moved: pricier plans, heavier usage, and
    customers who churn for other reasons.

    :param today: the demo's day.
    """
    starts = [today - timedelta(days=6), today - timedelta(days=3)]
    return [
        Batch(f"customers_{start:%Y%m%d}", start, 3, 2_500, seed, covariate_drift=0.8, concept_drift=0.5)
        for seed, start in enumerate(starts, 11)
    ]


def prepare_home(home: Path) -> None:
    """Empty ``home`` for a fresh demo, refusing a directory that is not the demo's or that a live demo uses.

    :param home: the state directory.
    """
    marker = home / MARKER_FILE
    if home.exists() and any(home.iterdir()):
        if not marker.is_file():
            raise DemoError(f"{home} is not empty and is not a demo state dir; set DEMO_HOME elsewhere")
        owner = int(marker.read_text().strip() or 0)
        if _is_demo_process(owner):
            raise DemoError(f"another demo (pid {owner}) is using {home}")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))


def _is_demo_process(pid: int) -> bool:
    """Whether ``pid`` is another live process running the demo (``python -m demo``)."""
    if pid in (0, os.getpid()):
        return False
    try:
        return psutil.Process(pid).cmdline()[1:3] == ["-m", "demo"]
    except psutil.Error:
        return False


def launch_stack(settings: Settings, resources: list[Resource]) -> Stack:
    """Start the profile's servers and wait until they are ready.

    :param settings: the demo settings.
    :param resources: receives each server (and database) as soon as it exists, so the caller can always stop it.
    """
    started = time.monotonic()
    stack = PROFILES[settings.profile](settings.home, settings.dags_folder, resources)
    print(f"  {settings.profile} stack ready after {time.monotonic() - started:.1f}s", flush=True)
    return stack


def land(stack: Stack, batches: list[Batch]) -> None:
    """Write batches into the landing zone, each appearing whole: written aside and renamed into it (locally),
    or put as one object (S3).

    :param stack: the running stack (its ``data_dir`` and how to reach it).
    :param batches: the batches.
    """
    for batch in batches:
        name = f"{batch.name}.parquet"
        target = f"{stack.data_dir}/{DataFolder.LANDING}/{name}"
        if is_s3_uri(target):
            write_dataset(batch.frame(), target, store=stack.store)
        else:
            staged = Path(stack.data_dir) / "staging" / name
            write_dataset(batch.frame(), str(staged))
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        note = " (corrupt)" if batch.corrupt else ""
        print(f"  landed {name}: {batch.rows:,} rows, {batch.days} days from {batch.start}{note}", flush=True)


def landed(stack: Stack) -> list[str]:
    """The names of the batch files waiting in the landing zone (other files are not batches).

    :param stack: the running stack.
    """
    uris = stack.store.list(f"{stack.data_dir}/{DataFolder.LANDING}/")
    return sorted(uri.rsplit("/", 1)[-1] for uri in uris if is_dataset_file(uri))


def trigger(api: AirflowApi, dag_id: str, conf: dict[str, Any]) -> str:
    """Trigger a run now, like the UI's trigger button; return its id.

    :param api: the Airflow API.
    :param dag_id: the DAG.
    :param conf: the run's params.
    """
    run_id = f"demo__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    return str(api.trigger(dag_id, run_id, None, conf)["dag_run_id"])


def ingest(api: AirflowApi, stack: Stack, batches: list[Batch]) -> None:
    """Land batches and run ``feature_ingestion`` until the landing zone is empty, reporting every run.

    The DAG keeps its hourly schedule, so a scheduled run may be active already (it is followed, and takes
    the batches) or start meanwhile and take them first (the run triggered here then finds nothing and
    skips at once). Every run since the landing is followed, oldest first, until the batches are gone.

    :param api: the Airflow API.
    :param stack: the running stack.
    :param batches: the batches to land.
    """
    followed = set(run_ids(api, INGESTION_DAG, ("success", "failed")))
    land(stack, batches)
    for _ in range(4):
        pending = [run_id for run_id in run_ids(api, INGESTION_DAG) if run_id not in followed]
        run_id = pending[0] if pending else trigger(api, INGESTION_DAG, {})
        report_batches(api, run_to_end(api, stack, INGESTION_DAG, run_id))
        followed.add(run_id)
        if not landed(stack):
            for late in [r for r in run_ids(api, INGESTION_DAG, ("success", "failed")) if r not in followed]:
                report_batches(api, run_to_end(api, stack, INGESTION_DAG, late))
            return
    raise DemoError(f"batches still in the landing zone after 4 runs of {INGESTION_DAG}: {landed(stack)}")


def report_batches(api: AirflowApi, tis: list[dict[str, Any]]) -> None:
    """Print how many batches were ingested, and each quarantined batch with its failures and Data Docs.

    :param api: the Airflow API.
    :param tis: the ingestion run's task instances.
    """
    expanded = [ti for ti in tis if ti["map_index"] >= 0]  # a run without batches has only the unexpanded ones
    if not expanded:
        print("  no batch for this run: the landing zone was empty (an earlier run took the batches)", flush=True)
        return
    ingested = quarantined = 0
    records: list[tuple[dict[str, Any], ValidationRecord]] = []
    for ti in expanded:
        if ti["operator"] == INGESTION and ti["state"] == "success":
            ingested += len((api.xcom(ti) or {}).get("batches", []))
        elif ti["operator"] == VALIDATION and ti["state"] in ("success", "skipped"):
            outcome: BatchesValidation = api.xcom(ti) or BatchesValidation(passed=[], quarantined=[], records=[])
            quarantined += len(outcome["quarantined"])
            records += [(ti, r) for r in outcome["records"] if r["dataset_uri"] in outcome["quarantined"]]
    print(f"  ingested {ingested} batch(es) into Feast; quarantined {quarantined}", flush=True)
    for ti, result in records:
        print(f"  Quarantined {Path(result.get('dataset_uri', '?')).name} [{task_label(ti)}]:", flush=True)
        for line in str(result.get("message", "(no validation result)")).splitlines():
            print(f"      {line}")
        print(f"    Data Docs: {result.get('docs_url')}", flush=True)


def check_drift_after(api: AirflowApi, stack: Stack, known: list[str]) -> DriftSummary | None:
    """Follow the ``drift_monitor`` runs that the new features started; return the drift summary, if any.

    Ingestion split over two runs starts two checks: each is followed, and the first that found drift (else
    the last that checked anything) is returned.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param known: the DAG's run ids before the ingestion.
    """
    followed = set(known)
    summaries: list[DriftSummary] = []
    new = [wait_for_new_run(api, stack, DRIFT_DAG, known, "asset_triggered", ASSET_RUN_TIMEOUT)]
    while new:
        for run_id in new:
            print("The new features started a drift check (asset churn_features_refreshed):", flush=True)
            summary = follow_drift_check(api, stack, run_id)
            summaries += [summary] if summary is not None else []
            followed.add(run_id)
        new = [r for r in run_ids(api, DRIFT_DAG) if r not in followed and r.startswith("asset_triggered")]
    return next((s for s in summaries if s["dataset_drift"]), summaries[-1] if summaries else None)


def follow_drift_check(api: AirflowApi, stack: Stack, run_id: str) -> DriftSummary | None:
    """Follow one ``drift_monitor`` run and print its verdict; return its summary, ``None`` if it skipped.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param run_id: the run.
    """
    (check,) = [ti for ti in run_to_end(api, stack, DRIFT_DAG, run_id) if ti["operator"] == DRIFT_CHECK]
    if check["state"] == "skipped":
        reasons = log_lines(api, stack, check, lambda line: "Nothing to check" in line)
        print(f"  skipped: {reasons[-1].split('Nothing to check: ')[-1] if reasons else 'see its log'}", flush=True)
        return None
    summary: DriftSummary = api.xcom(check)
    verdict = "DRIFT" if summary["dataset_drift"] else "no drift"
    print(
        f"  {verdict}: {len(summary['drifted_columns'])} of {len(summary['columns'])} columns drifted "
        f"(share {summary['share']:.2f}): {', '.join(summary['drifted_columns'])}",
        flush=True,
    )
    print(f"  Drift report: {as_link(summary['report_uri'])}", flush=True)
    if "episode" in summary:
        print(f"  episode: {summary['episode']}", flush=True)
    return summary


def report_training(api: AirflowApi, tis: list[dict[str, Any]]) -> PromotionRecord:
    """Print the training set a CT run built and its promotion decision; return the decision.

    :param api: the Airflow API.
    :param tis: the CT run's task instances.
    """
    by_operator = {ti["operator"]: ti for ti in tis}
    data: TrainingSetResult = api.xcom(by_operator[TRAINING_SET])
    print(
        f"  training set: {data['rows']:,} rows from feature service {data['feature_service']}, window "
        f"{data['window']}, {data['dropped']} dropped for missing features, digest {data['digest'][:12]}",
        flush=True,
    )
    decision: PromotionRecord = api.xcom(by_operator[PROMOTION])
    outcome = PROMOTED if decision["promote"] else REJECTED
    print(f"  version {decision['version']} {outcome}: {decision['reason']}", flush=True)
    return decision


def tell_story(api: AirflowApi, stack: Stack) -> str:
    """Ingest history, train, land drifted data, and follow the retraining it causes; return that run's id.

    :param api: the Airflow API.
    :param stack: the running stack.
    """
    today = datetime.now(timezone.utc).date()
    print("\n== 1. Two weeks of raw batches land; one comes from a broken feed ==", flush=True)
    known_checks = run_ids(api, DRIFT_DAG)
    ingest(api, stack, history(today))
    check_drift_after(api, stack, known_checks)

    print("\n== 2. The first model trains on a point-in-time Feast training set ==", flush=True)
    known_scoring = scoring_runs(api)
    report_training(api, run_to_end(api, stack, TRAINING_DAG, trigger(api, TRAINING_DAG, {"model_name": MODEL_NAME})))
    print("The new champion scores the recent customers (asset churn_model_champion):", flush=True)
    follow_scoring(api, stack, known_scoring)

    print("\n== 3. The market moves: drifted batches land ==", flush=True)
    known_checks, known_trainings = run_ids(api, DRIFT_DAG), run_ids(api, TRAINING_DAG)
    known_scoring = scoring_runs(api)
    ingest(api, stack, drifted(today))
    print("The champion scores the new customers (asset churn_features_refreshed):", flush=True)
    follow_scoring(api, stack, known_scoring)
    summary = check_drift_after(api, stack, known_checks)
    if summary is None or not summary["dataset_drift"]:
        raise DemoError("drift_monitor found no drift in the drifted batches, so nothing retrains")
    retraining = wait_for_new_run(api, stack, TRAINING_DAG, known_trainings, "asset_triggered", ASSET_RUN_TIMEOUT)
    print("The scheduler started retraining on the asset event (no one triggered it):", flush=True)
    known_scoring = scoring_runs(api)
    decision = report_training(api, run_to_end(api, stack, TRAINING_DAG, retraining))
    if decision["promote"]:
        print("The new champion scores the recent customers (asset churn_model_champion):", flush=True)
        follow_scoring(api, stack, known_scoring)
    settle(api, stack)
    return retraining


def scoring_runs(api: AirflowApi) -> tuple[list[str], list[str]]:
    """The run ids of ``batch_inference`` and ``model_quality``, taken before the event that starts them: the
    scheduler may start both before the story looks again.

    :param api: the Airflow API.
    """
    return run_ids(api, INFERENCE_DAG), run_ids(api, QUALITY_DAG)


def follow_scoring(api: AirflowApi, stack: Stack, known: tuple[list[str], list[str]]) -> None:
    """Follow the next ``batch_inference`` run the scheduler starts, then the ``model_quality`` check it starts.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param known: :func:`scoring_runs` before the event that starts them.
    """
    known_scoring, known_quality = known
    run_id = wait_for_new_run(api, stack, INFERENCE_DAG, known_scoring, "asset_triggered", ASSET_RUN_TIMEOUT)
    (score,) = [ti for ti in run_to_end(api, stack, INFERENCE_DAG, run_id) if ti["operator"] == INFERENCE]
    if score["state"] == "skipped":
        print("  skipped: nothing to score", flush=True)
        return
    result: InferenceResult = api.xcom(score)
    stats = result["statistics"]
    print(
        f"  version {result['version']} scored {result['scored']:,} of {result['rows']:,} rows "
        f"({result['unscorable']} unscorable, policy {result['unscorable_policy']}); mean P(churn) "
        f"{stats.get('mean', float('nan')):.3f}, positive rate {stats.get('positive_rate', float('nan')):.3f}",
        flush=True,
    )
    print(f"  predictions: {as_link(result['predictions_uri'])}", flush=True)
    quality_run = wait_for_new_run(api, stack, QUALITY_DAG, known_quality, "asset_triggered", ASSET_RUN_TIMEOUT)
    print("The predictions start the live-quality check (asset churn_predictions):", flush=True)
    (check,) = [ti for ti in run_to_end(api, stack, QUALITY_DAG, quality_run) if ti["operator"] == QUALITY]
    if check["state"] == "success":
        print_quality(api.xcom(check))


def print_quality(result: QualityResult) -> None:
    """Print the live quality series a ``model_quality`` run recomputed, and its verdict.

    :param result: the run's result.
    """
    metric = result.get("metric", METRIC)
    print(f"  live {metric} of {MODEL_NAME} by day (labels joined to predictions):", flush=True)
    for window in result.get("windows", []):
        value = window.get(metric)
        shown = "n/a" if value is None else f"{value:.4f}"
        print(
            f"    {str(window.get('window_start'))[:10]}  v{window.get('model_version')}  {metric} {shown}  "
            f"labels {window.get('labels')}/{window.get('predictions')} "
            f"(coverage {window.get('label_coverage', 0.0):.0%})  {window.get('verdict') or ''}".rstrip(),
            flush=True,
        )
    print(f"  verdict: {result.get('reason', 'none')}", flush=True)


def settle(api: AirflowApi, stack: Stack) -> None:
    """Let the runs the story's events started (a second retraining, scoring, quality checks) finish.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    """
    for dag_id in SETTLED_DAGS:
        for run_id in run_ids(api, dag_id, ("queued", "running")):
            print(f"Letting {dag_id} run {run_id} finish:", flush=True)
            run_to_end(api, stack, dag_id, run_id)


def print_scoring(api: AirflowApi) -> None:
    """Print how many rows each champion version scored, over every ``batch_inference`` run.

    :param api: the Airflow API.
    """
    scored: dict[str, int] = {}
    for run_id in run_ids(api, INFERENCE_DAG, ("success",)):
        for ti in api.task_instances(INFERENCE_DAG, run_id):
            if ti["operator"] == INFERENCE and ti["state"] == "success":
                result: InferenceResult = api.xcom(ti)
                scored[result["version"]] = scored.get(result["version"], 0) + result["scored"]
    print(f"\nBatch inference: rows scored by each version of {MODEL_NAME}")
    for version, rows in sorted(scored.items(), key=lambda item: int(item[0])):
        print(f"  version {version}: {rows:,} rows")
    if not scored:
        print("  none")


def print_history(tracking_uri: str) -> None:
    """Print the champion history: every alias move of the demo model, oldest first.

    :param tracking_uri: the MLflow server.
    """
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    print(f"\nChampion history of {MODEL_NAME} (airflow-mlops history {MODEL_NAME}):")
    print(_indent(format_history(read_history(client, MODEL_NAME)), "  "), flush=True)


def as_link(uri: str) -> str:
    """A local path as a ``file://`` URL; other URIs (``s3://``) as they are.

    :param uri: a path or URI.
    """
    return uri if "://" in uri else Path(uri).absolute().as_uri()


def format_import_errors(errors: list[dict[str, Any]]) -> str:
    """Render import errors as indented ``filename`` + stack trace blocks, or ``(none)``.

    :param errors: import errors from the API.
    """
    if not errors:
        return "    (none)"
    blocks = [f"  {err['filename']}:\n" + _indent(err["stack_trace"], "    ") for err in errors]
    return "\n".join(blocks)


def _indent(text: str, prefix: str) -> str:
    """Prefix every line of ``text``."""
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def wait_for_dags(api: AirflowApi, stack: Stack) -> None:
    """Wait until the story's DAGs are parsed, failing with the stack trace of an import error; unpause them.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    """

    def parsed() -> bool | None:
        errors = api.import_errors()
        own = [err for err in errors if Path(err["filename"]).stem in STORY_DAGS]
        if own:
            raise DemoError(f"DAGs of the demo have import errors:\n{format_import_errors(own)}")
        return True if all(api.dag(dag_id) for dag_id in STORY_DAGS) else None

    try:
        wait_for(f"DAGs {', '.join(STORY_DAGS)} to be parsed", parsed, DAG_PARSE_TIMEOUT, stack.resources)
    except StackError as err:
        raise DemoError(f"{err}\nimport errors:\n{format_import_errors(api.import_errors())}") from err
    for dag_id in STORY_DAGS:
        api.set_paused(dag_id, False)
    print(f"  DAGs {', '.join(STORY_DAGS)} parsed from {stack.dags_folder} and unpaused", flush=True)
    others = api.import_errors()
    if others:
        print(f"  warning: other DAG files fail to import:\n{format_import_errors(others)}", flush=True)


@dataclass(frozen=True)
class VersionSummary:
    """What the summary shows of one model version."""

    version: int
    holdout_metric: float | None
    aliases: tuple[str, ...]
    tags: dict[str, str]

    @property
    def shown_tags(self) -> dict[str, str]:
        """Its lineage and promotion tags."""
        return {key: value for key, value in self.tags.items() if key in SHOWN_TAGS}


def read_registry(tracking_uri: str) -> list[VersionSummary]:
    """Read every version of the demo model from MLflow, oldest first.

    :param tracking_uri: the MLflow server.
    """
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)  # whatever the shell has set
    try:
        aliases = client.get_registered_model(MODEL_NAME).aliases
    except MlflowException as err:
        raise DemoError(f"model {MODEL_NAME!r} is not in the registry: {err.message}") from err
    summaries = []
    for mv in client.search_model_versions(f"name = {filter_value(MODEL_NAME)}"):
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        own_aliases = sorted(alias for alias, version in aliases.items() if str(version) == mv.version)
        summaries.append(
            VersionSummary(
                version=int(mv.version),
                holdout_metric=metrics.get(f"holdout_{METRIC}"),
                aliases=tuple(own_aliases),
                tags=dict(mv.tags),
            )
        )
    return sorted(summaries, key=lambda summary: summary.version)


def print_summary(versions: list[VersionSummary], stack: Stack) -> VersionSummary | None:
    """Print the registry and the UIs' URLs; return the champion version, if any.

    :param versions: the model's versions.
    :param stack: the running servers.
    """
    print(f"\nModel registry: {MODEL_NAME} ({len(versions)} versions)")
    for summary in versions:
        metric = "n/a" if summary.holdout_metric is None else f"{summary.holdout_metric:.4f}"
        aliases = f"  @{', @'.join(summary.aliases)}" if summary.aliases else ""
        print(f"  version {summary.version}  holdout_{METRIC}={metric}{aliases}")
        for key, value in sorted(summary.shown_tags.items()):
            print(f"      {key} = {value}")
    champion = next((s for s in versions if CHAMPION in s.aliases), None)
    if champion is None:
        print(f"\nchampion: none (no version has the alias {CHAMPION!r})")
    else:
        reason = champion.tags.get(Tag.PROMOTION_REASON, "no promotion reason recorded")
        print(f"\nchampion: version {champion.version} - {reason}")
    print(f"\nAirflow UI: {stack.airflow_url}/dags/{TRAINING_DAG}")
    if stack.credentials:
        print(f"  login: {stack.credentials[0]}, password in {stack.airflow_home}/simple_auth_manager_passwords.json")
    print(f"MLflow UI:  {stack.mlflow_url}/#/models/{MODEL_NAME}", flush=True)
    return champion


def check_complete(versions: list[VersionSummary], champion: VersionSummary | None, retraining: str) -> None:
    """Fail unless the retraining registered a version, every version has its lineage, and there is a champion.

    :param versions: the model's versions.
    :param champion: the champion, if any.
    :param retraining: the run id of the drift-triggered retraining.
    """
    if not any(summary.tags.get(Tag.AIRFLOW_RUN_ID) == retraining for summary in versions):
        raise DemoError(f"the drift-triggered run {retraining} registered no version")
    for summary in versions:
        missing = [key for key in LINEAGE_TAGS if not summary.tags.get(key)]
        if missing:
            raise DemoError(f"version {summary.version} lacks the lineage tags {missing}")
    if champion is None:
        raise DemoError(f"no version of {MODEL_NAME} has the alias {CHAMPION!r}")


def run_demo(settings: Settings, resources: list[Resource]) -> None:
    """Start the stack, tell the story, print the summary, then wait for Ctrl-C unless ``DEMO_EXIT``.

    :param settings: the demo settings.
    :param resources: receives the started servers and databases (the caller stops them).
    """
    stack = launch_stack(settings, resources)
    with contextlib.closing(stack.api()) as api:
        wait_for_dags(api, stack)
        retraining = tell_story(api, stack)
        print_scoring(api)
    print_history(stack.mlflow_url)
    versions = read_registry(stack.mlflow_url)
    check_complete(versions, print_summary(versions, stack), retraining)
    print("\nThe continuous-training loop completed.", flush=True)
    if not settings.exit_when_done:
        print("Servers stay up; press Ctrl-C to stop them.", flush=True)
        wait_until_interrupted(stack)


def wait_until_interrupted(stack: Stack) -> None:
    """Block until Ctrl-C, failing if a server dies meanwhile.

    :param stack: the running servers.
    """
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            stack.check_alive()
            time.sleep(1.0)


def stop_servers(resources: list[Resource]) -> bool:
    """Stop the servers in reverse start order, with every process they started, then remove the run's
    databases; return whether all of that succeeded.

    :param resources: what was started.
    """
    if resources:
        print("\nStopping the servers ...", flush=True)
    stopped = True
    for res in reversed(resources):
        started = time.monotonic()
        try:
            is_airflow = isinstance(res, ManagedProcess) and res.name.startswith("airflow")
            res.stop(AIRFLOW_STOP_GRACE if is_airflow else OTHER_STOP_GRACE)
            print(f"  {res.name} stopped after {time.monotonic() - started:.1f}s", flush=True)
        except Exception as err:  # keep stopping the others
            print(f"  {res.name}: {err}", file=sys.stderr, flush=True)
            stopped = False
    return stopped


def handle_signals(interrupt: bool) -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` (``interrupt``), or ignore them.

    SIGINT is set explicitly because a shell starting us in the background leaves it ignored, and the
    servers would inherit that and not stop on it.

    :param interrupt: ``True`` while the demo runs, ``False`` while it cleans up.
    """

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    handler = raise_interrupt if interrupt else signal.SIG_IGN
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def main() -> int:
    """Run the demo, always stopping what it started; return the exit code."""
    resources: list[Resource] = []
    handle_signals(interrupt=True)
    try:
        settings = Settings.from_env()
        prepare_home(settings.home)
        run_demo(settings, resources)
        code = 0
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        code = 130
    except (DemoError, StackError) as err:
        print(f"\ndemo failed: {err}", file=sys.stderr, flush=True)
        code = 1
    finally:
        handle_signals(interrupt=False)
        stopped = stop_servers(resources)
    return code if stopped else 1
