"""Run the continuous-training loop end to end on one machine (``make demo``).

Starts ``mlflow server`` and ``airflow standalone`` on free loopback ports with all state under
``DEMO_HOME`` (default ``<repo>/.demo``, wiped at start), writes two training datasets of the demo churn
problem, triggers the ``continuous_training`` DAG on the older one, then on the newer one, shows each task's
progress, and prints the model registry: every version with its holdout metric, which one is the champion
and why.

Environment:
    DEMO_HOME         state directory (default ``<repo>/.demo``).
    DEMO_EXIT=1       stop everything and exit when done: 0 only if the whole loop completed.
                      Otherwise the servers stay up until Ctrl-C.
    DEMO_DAGS_FOLDER  DAGs folder to serve (default ``<repo>/dags``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from embedded_stack import (
    AirflowApi,
    AirflowStandalone,
    ManagedProcess,
    MlflowServer,
    StackError,
    free_ports,
    wait_for,
)
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from airflow_mlops_provider.core.datasets import write_dataset
from airflow_mlops_provider.core.demo_data import assign_splits, generate_batch

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "continuous_training"
MODEL_NAME = "churn"
METRIC = "roc_auc"
CHAMPION_ALIAS = "champion"
PROMOTION_TAG_PREFIX = "mlops.promotion."
MARKER_FILE = ".demo-state"
DAG_PARSE_TIMEOUT = 180.0
RUN_TIMEOUT = 1800.0
# Short: a scheduler stopped soon after it started can hang on its idle LocalExecutor workers, and the
# SQLite state is throwaway, so waiting longer gains nothing.
AIRFLOW_STOP_GRACE = 10.0
MLFLOW_STOP_GRACE = 10.0
QUIET_TASK_STATES = {None, "scheduled", "queued", "removed"}
LOG_TAIL_LINES = 40


class DemoError(RuntimeError):
    """The continuous-training loop did not complete."""


@dataclass(frozen=True)
class Settings:
    """What the environment asks of the demo."""

    home: Path
    dags_folder: Path
    exit_when_done: bool

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``DEMO_HOME``, ``DEMO_DAGS_FOLDER`` and ``DEMO_EXIT``."""
        return cls(
            home=Path(os.environ.get("DEMO_HOME") or REPO / ".demo").resolve(),
            dags_folder=Path(os.environ.get("DEMO_DAGS_FOLDER") or REPO / "dags").resolve(),
            exit_when_done=os.environ.get("DEMO_EXIT", "") not in ("", "0"),
        )


@dataclass(frozen=True)
class Window:
    """A slice of generated churn data: ``days`` days from ``start``."""

    start: date
    days: int
    rows: int
    seed: int
    covariate_drift: float = 0.0

    @property
    def end(self) -> date:
        """The first day after the window."""
        return self.start + timedelta(days=self.days)

    @property
    def last_day(self) -> date:
        """The window's last day."""
        return self.end - timedelta(days=1)

    def frame(self) -> pd.DataFrame:
        """Generate the window's rows."""
        return generate_batch(
            self.rows, self.start, days=self.days, seed=self.seed, covariate_drift=self.covariate_drift
        )


# Run 1 trains on two weeks; run 2 retrains on those plus a fresh, slightly drifted week.
FIRST_WINDOW = Window(start=date(2025, 1, 1), days=14, rows=8_000, seed=1)
FRESH_WINDOW = Window(start=date(2025, 1, 15), days=7, rows=4_000, seed=2, covariate_drift=0.3)


@dataclass(frozen=True)
class TrainingRun:
    """One DAG run of the demo and the dataset it trains on."""

    run_id: str
    dataset_uri: str
    rows: int
    logical_date: datetime

    def conf(self) -> dict[str, Any]:
        """The DAG run's conf; the DAG's other params keep their defaults."""
        return {"dataset_uri": self.dataset_uri, "model_name": MODEL_NAME}


@dataclass
class Stack:
    """The running servers."""

    mlflow: MlflowServer
    airflow: AirflowStandalone
    processes: list[ManagedProcess]

    def check_alive(self) -> None:
        """Raise :class:`StackError` if a server has died."""
        for proc in self.processes:
            proc.check_alive()


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
    """Whether ``pid`` is another live process running this script."""
    if pid in (0, os.getpid()):
        return False
    try:
        return any(arg.endswith("demo.py") for arg in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def write_training_sets(data_dir: Path) -> list[TrainingRun]:
    """Write the datasets of both runs (with a ``split`` column) and return the runs to trigger.

    :param data_dir: where to write them.
    """
    first = FIRST_WINDOW.frame()
    grown = pd.concat([first, FRESH_WINDOW.frame()], ignore_index=True)
    runs = []
    for number, (frame, window) in enumerate(((first, FIRST_WINDOW), (grown, FRESH_WINDOW)), start=1):
        name = f"{MODEL_NAME}_{FIRST_WINDOW.start:%Y%m%d}_{window.last_day:%Y%m%d}.parquet"
        uri = str(data_dir / "training" / name)
        write_dataset(assign_splits(frame), uri)
        logical_date = datetime.combine(window.end, dtime(), tzinfo=timezone.utc)
        runs.append(TrainingRun(f"demo_{number}_{window.end:%Y%m%d}", uri, len(frame), logical_date))
    return runs


def launch_stack(settings: Settings, processes: list[ManagedProcess]) -> Stack:
    """Start MLflow and Airflow side by side and wait until both are ready.

    :param settings: the demo settings.
    :param processes: receives each server as soon as it is started, so the caller can always stop it.
    """
    home = settings.home
    mlflow_port, api_port, worker_log_port, trigger_log_port = free_ports(4)
    mlflow = MlflowServer(home=home / "mlflow", port=mlflow_port)
    airflow = AirflowStandalone(
        home=home / "airflow",
        api_port=api_port,
        worker_log_port=worker_log_port,
        trigger_log_port=trigger_log_port,
        dags_folder=settings.dags_folder,
        mlflow_url=mlflow.url,
        data_dir=home / "data",
    )
    print(f"Starting MLflow on {mlflow.url} and Airflow on {airflow.url} (logs under {home}) ...", flush=True)
    started = time.monotonic()
    processes.append(mlflow.launch())
    processes.append(airflow.launch())
    stack = Stack(mlflow=mlflow, airflow=airflow, processes=processes)
    write_stack_file(home, stack)
    mlflow.wait_ready(processes)
    print(f"  MLflow ready after {time.monotonic() - started:.1f}s", flush=True)
    airflow.wait_ready(processes)
    print(f"  Airflow ready after {time.monotonic() - started:.1f}s", flush=True)
    return stack


def write_stack_file(home: Path, stack: Stack) -> None:
    """Record the servers' ports and session ids in ``<home>/stack.json`` (read by the e2e test).

    :param home: the state directory.
    :param stack: the started stack.
    """
    airflow = stack.airflow
    info = {
        "mlflow": {"url": stack.mlflow.url, "ports": [stack.mlflow.port]},
        "airflow": {
            "url": airflow.url,
            "ports": [airflow.api_port, airflow.worker_log_port, airflow.trigger_log_port],
        },
        "sessions": [proc.pid for proc in stack.processes],
    }
    (home / "stack.json").write_text(json.dumps(info, indent=2))


def wait_for_dag(api: AirflowApi, stack: Stack) -> None:
    """Wait until the DAG is parsed; fail with the stack trace if its file has an import error.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    """

    def parsed() -> dict[str, Any] | None:
        errors = api.import_errors()
        own = [err for err in errors if Path(err["filename"]).stem == DAG_ID]
        if own:
            raise DemoError(f"DAG {DAG_ID} has import errors:\n{format_import_errors(own)}")
        return api.dag(DAG_ID)

    try:
        wait_for(f"DAG {DAG_ID} to be parsed", parsed, DAG_PARSE_TIMEOUT, stack.processes)
    except StackError as err:
        raise DemoError(f"{err}\nimport errors:\n{format_import_errors(api.import_errors())}") from err
    print(f"  DAG {DAG_ID} parsed from {stack.airflow.dags_folder}", flush=True)
    others = api.import_errors()
    if others:
        print(f"  warning: other DAG files fail to import:\n{format_import_errors(others)}", flush=True)


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


def execute_run(api: AirflowApi, stack: Stack, run: TrainingRun, label: str) -> None:
    """Trigger one DAG run, print task progress until it ends, and fail with the failed tasks' logs.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param run: the run to trigger.
    :param label: e.g. ``"1/2"``.
    """
    print(f"\nRun {label}: {run.run_id} on {run.dataset_uri} ({run.rows:,} rows)", flush=True)
    api.trigger(DAG_ID, run.run_id, run.logical_date.isoformat(), run.conf())
    final = follow_run(api, stack, run.run_id)
    duration = final.get("duration") or 0.0
    print(f"Run {label}: {final['state']} in {duration:.1f}s", flush=True)
    if final["state"] != "success":
        failed = [ti for ti in api.task_instances(DAG_ID, run.run_id) if ti["state"] == "failed"]
        for ti in failed:
            print_log_tail(api, stack, ti)
        names = ", ".join(task_label(ti) for ti in failed) or "no task failed; see the scheduler log"
        raise DemoError(f"run {run.run_id} ended {final['state']}: {names}")


def follow_run(api: AirflowApi, stack: Stack, run_id: str) -> dict[str, Any]:
    """Print each task whenever its state changes, until the run ends; return the final run.

    :param api: the Airflow API.
    :param stack: the servers that must stay alive meanwhile.
    :param run_id: the run to follow.
    """
    seen: dict[str, str | None] = {}
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        stack.check_alive()
        dag_run = api.dag_run(DAG_ID, run_id)
        for ti in sorted(api.task_instances(DAG_ID, run_id), key=_started_first):
            name = task_label(ti)
            if ti["state"] != seen.get(name) and ti["state"] not in QUIET_TASK_STATES:
                print_task(ti)
            seen[name] = ti["state"]
        if dag_run["state"] in ("success", "failed"):
            return dag_run
        time.sleep(1.0)
    raise DemoError(f"run {run_id} did not finish within {RUN_TIMEOUT:.0f}s")


def _started_first(ti: dict[str, Any]) -> tuple[str, str]:
    """Sort key: by start time (unstarted last), then by name."""
    return (ti.get("start_date") or "~", task_label(ti))


def task_label(ti: dict[str, Any]) -> str:
    """``task_id``, with ``[map_index]`` for a mapped task instance.

    :param ti: a task instance from the API.
    """
    return ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"


def print_task(ti: dict[str, Any]) -> None:
    """Print one progress line: ``  name  state  duration``.

    :param ti: a task instance from the API.
    """
    duration = ti.get("duration")
    shown = f"{duration:.1f}s" if duration is not None and ti["state"] != "running" else ""
    print(f"  {task_label(ti):<32} {ti['state']:<16} {shown}".rstrip(), flush=True)


def print_log_tail(api: AirflowApi, stack: Stack, ti: dict[str, Any]) -> None:
    """Print the end of a failed task's log, from the API or else from the log files.

    :param api: the Airflow API.
    :param stack: the stack (for the log folder).
    :param ti: the failed task instance.
    """
    try:
        text = api.task_log(ti)
    except StackError as err:
        text = f"(log API failed: {err})\n" + read_log_files(stack.airflow.home / "logs", ti)
    lines = text.splitlines()[-LOG_TAIL_LINES:]
    header = f"--- last {len(lines)} log lines of {task_label(ti)} (try {ti['try_number']}) ---"
    print(f"\n{header}\n" + "\n".join(lines) + "\n---", flush=True)


def read_log_files(logs_dir: Path, ti: dict[str, Any]) -> str:
    """Concatenate the task instance's log files under Airflow's default log layout.

    :param logs_dir: ``$AIRFLOW_HOME/logs``.
    :param ti: the task instance.
    """
    task_dir = logs_dir / f"dag_id={ti['dag_id']}" / f"run_id={ti['dag_run_id']}" / f"task_id={ti['task_id']}"
    files = sorted(task_dir.rglob(f"attempt={ti['try_number']}.log"))
    return "\n".join(path.read_text(errors="replace") for path in files) or f"(no log file under {task_dir})"


@dataclass(frozen=True)
class VersionSummary:
    """What the summary shows of one model version."""

    version: int
    holdout_metric: float | None
    aliases: tuple[str, ...]
    promotion_tags: dict[str, str]


def read_registry(tracking_uri: str) -> list[VersionSummary]:
    """Read every version of the demo model from MLflow, oldest first.

    :param tracking_uri: the MLflow server.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        aliases = client.get_registered_model(MODEL_NAME).aliases
    except MlflowException as err:
        raise DemoError(f"model {MODEL_NAME!r} is not in the registry: {err.message}") from err
    summaries = []
    for mv in client.search_model_versions(f"name = '{MODEL_NAME}'"):
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        own_aliases = sorted(alias for alias, version in aliases.items() if str(version) == mv.version)
        summaries.append(
            VersionSummary(
                version=int(mv.version),
                holdout_metric=metrics.get(f"holdout_{METRIC}"),
                aliases=tuple(own_aliases),
                promotion_tags={k: v for k, v in mv.tags.items() if k.startswith(PROMOTION_TAG_PREFIX)},
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
        for key, value in sorted(summary.promotion_tags.items()):
            print(f"      {key} = {value}")
    champion = next((s for s in versions if CHAMPION_ALIAS in s.aliases), None)
    if champion is None:
        print(f"\nchampion: none (no version has the alias {CHAMPION_ALIAS!r})")
    else:
        reason = champion.promotion_tags.get(f"{PROMOTION_TAG_PREFIX}reason", "no promotion reason recorded")
        print(f"\nchampion: version {champion.version} - {reason}")
    print(f"\nAirflow UI: {stack.airflow.url}/dags/{DAG_ID}")
    print(f"MLflow UI:  {stack.mlflow.url}/#/models/{MODEL_NAME}", flush=True)
    return champion


def check_complete(versions: list[VersionSummary], champion: VersionSummary | None, runs: int) -> None:
    """Fail unless the registry holds a version per run and a champion.

    :param versions: the model's versions.
    :param champion: the champion, if any.
    :param runs: how many runs succeeded.
    """
    if len(versions) < runs:
        raise DemoError(f"expected a model version per run ({runs}), found {len(versions)}")
    if champion is None:
        raise DemoError(f"no version of {MODEL_NAME} has the alias {CHAMPION_ALIAS!r}")


def run_demo(settings: Settings, processes: list[ManagedProcess]) -> None:
    """Start the stack, run the loop twice, print the summary, then wait for Ctrl-C unless ``DEMO_EXIT``.

    :param settings: the demo settings.
    :param processes: receives the started servers (the caller stops them).
    """
    runs = write_training_sets(settings.home / "data")
    stack = launch_stack(settings, processes)
    with contextlib.closing(AirflowApi(stack.airflow.url)) as api:
        wait_for_dag(api, stack)
        for number, run in enumerate(runs, start=1):
            execute_run(api, stack, run, f"{number}/{len(runs)}")
    versions = read_registry(stack.mlflow.url)
    check_complete(versions, print_summary(versions, stack), len(runs))
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


def stop_servers(processes: list[ManagedProcess]) -> bool:
    """Stop the servers in reverse start order, with every process they started; return whether all stopped.

    :param processes: the started servers.
    """
    if processes:
        print("\nStopping the servers ...", flush=True)
    stopped = True
    for proc in reversed(processes):
        started = time.monotonic()
        try:
            proc.stop(AIRFLOW_STOP_GRACE if proc.name == AirflowStandalone.NAME else MLFLOW_STOP_GRACE)
            print(f"  {proc.name} stopped after {time.monotonic() - started:.1f}s", flush=True)
        except StackError as err:
            print(f"  {err}", file=sys.stderr, flush=True)
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
    settings = Settings.from_env()
    processes: list[ManagedProcess] = []
    handle_signals(interrupt=True)
    try:
        prepare_home(settings.home)
        run_demo(settings, processes)
        code = 0
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        code = 130
    except (DemoError, StackError) as err:
        print(f"\ndemo failed: {err}", file=sys.stderr, flush=True)
        code = 1
    finally:
        handle_signals(interrupt=False)
        stopped = stop_servers(processes)
    return code if stopped else 1


if __name__ == "__main__":
    sys.exit(main())
