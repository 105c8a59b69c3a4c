"""A drift check killed right after saving its episode state, before its event was emitted, and retried.

Each run of a monitoring DAG is a task instance of ``DriftCheckOperator`` sharing one ``state_uri``; the
script below plays three runs (drift, no drift, a new drifted window: two episodes) and, like Airflow's
supervisor, records a run's asset events only when its ``execute`` returned. ``drift.after_episode_update``
kills one run at a seeded pass; the retry (same task instance) must still emit that run's event, and no run
may emit one twice: exactly one event per episode.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.fixtures.drift_data import NOT_FEATURES, DriftData, write_drift_data
from tests.fixtures.task_server import TaskServer
from tests.reliability.killing import run_with_retries

POINT = "drift.after_episode_update"
SEED = 14
#: One kill per pass of the point (one pass per run), in a seeded order.
HITS = random.Random(SEED).sample(range(1, 4), 3)

SCRIPT = """
import json
from pathlib import Path

from airflow.sdk import Asset
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_mlops_provider.operators.drift import DriftCheckOperator
from tests.fixtures.task_context import RuntimeTaskInstance

work = Path({work!r})
for number, current in enumerate({runs!r}):
    done = work / f"run{{number}}.done"
    if done.exists():  # a succeeded task instance is not run again
        continue
    op = DriftCheckOperator(
        task_id="check_drift", reference_uri={reference!r}, current_uri=current, exclude_columns={exclude!r},
        state_uri=str(work / "state.json"), report_prefix=str(work / "reports" / str(number)),
        drift_asset=Asset(name="kill_drift", uri="mlops://drift/kill_drift"), storage_conn_id=None,
    )
    ti = RuntimeTaskInstance("drift_kill", f"run{{number}}", "check_drift")
    context = {{"ti": ti, "outlet_events": OutletEventAccessors()}}
    summary = op.execute(context)
    with (work / "events.jsonl").open("a") as events:  # the supervisor commits events on success only
        for _ in context["outlet_events"][op.drift_alias].asset_alias_events:
            events.write(json.dumps({{"run": number, "window": summary["window_id"]}}) + "\\n")
    done.touch()
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DriftData:
    return write_drift_data(tmp_path_factory.mktemp("drift"))


@pytest.mark.parametrize("hit", HITS)
def test_a_killed_check_emits_its_episode_event_exactly_once(
    data: DriftData, tmp_path: Path, hit: int, task_server: TaskServer
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    runs = [data.drifted, data.clean, data.drifted_later]  # episode 1 starts, ends; episode 2 starts
    script = SCRIPT.format(work=str(work), runs=runs, reference=data.reference, exclude=NOT_FEATURES)

    attempts = run_with_retries(task_server, script, POINT, hit, tmp_path / "failpoints")

    assert attempts.killed == 1 and attempts.codes[-1] == 0, attempts.output
    events = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines()]
    assert [event["run"] for event in events] == [0, 2]  # one per episode, none lost, none twice
    state = json.loads((work / "state.json").read_text())
    assert state["fired_windows"] == [event["window"] for event in events]  # no episode counted twice
    assert len(state["fired_at"]) == 2
