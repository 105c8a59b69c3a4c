"""P6's per-task breakdown, from task instances and task logs as the REST API returns them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from benchmarks.bench_ct import ct_figures, execute_window, task_spans
from benchmarks.bench_demo import stages

EVENT = datetime(2026, 12, 3, 12, 0, 0, tzinfo=timezone.utc)


def log(begin: str, end: str) -> str:
    return "\n".join(
        [
            "2026-12-03T12:00:01.000000Z info task ::group::Pre Execute",
            "2026-12-03T12:00:01.500000Z info task Worker startup parse complete",
            f"2026-12-03T{begin}Z info task ::endgroup::",
            "2026-12-03T12:00:03.000000Z info airflow.task.operators.X did the work",
            f"2026-12-03T{end}Z info task ::group::Post Execute",
            f"2026-12-03T{end}Z info task ::endgroup::",
        ]
    )


def ti(task_id: str, start: str, end: str) -> dict[str, str]:
    return {"task_id": task_id, "start_date": f"2026-12-03T{start}Z", "end_date": f"2026-12-03T{end}+00:00"}


def test_each_task_is_split_into_wait_start_execute_and_finish_from_the_drift_event_on() -> None:
    skipped = {"task_id": "approve", "start_date": None, "end_date": "2026-12-03T12:00:14Z", "state": "skipped"}
    tis = [ti("register", "12:00:11", "12:00:14"), skipped, ti("train", "12:00:01", "12:00:10")]
    logs = {"train": log("12:00:02", "12:00:09.5"), "register": log("12:00:12", "12:00:13"), "approve": ""}

    first, second = task_spans(tis, logs, EVENT)

    assert first.task_id == "train" and second.task_id == "register"
    assert first.breakdown() == "wait 1.0 s, start 1.0 s, execute 7.5 s, finish 0.5 s"
    assert second.breakdown() == "wait 1.0 s, start 1.0 s, execute 1.0 s, finish 1.0 s"
    total, *per_task = ct_figures([first, second], EVENT)
    assert (total.ours, total.baseline) == (14.0, 8.5)
    assert not total.met and "overhead 2.8 s/task" in total.note  # (14 - 8.5) / 2 tasks > 2.5
    assert [(f.what, f.ours, f.baseline, f.met) for f in per_task] == [
        ("task train", 10.0, 7.5, True),
        ("task register", 4.0, 1.0, False),
    ]


def test_a_log_without_the_execute_markers_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no '::endgroup::'"):
        execute_window("2026-12-03T12:00:01Z info task ::group::Pre Execute")


def test_the_demo_stages_note_names_the_stack_start_and_each_run() -> None:
    output = "\n".join(
        [
            "  embedded stack ready after 41.1s",
            "feature_ingestion run demo__1:",
            "  apply running",
            "  -> success in 60.2s",
            "continuous_training run asset_triggered__2026-12-03T12:34:25+00:00_x:",
            "  -> success in 30.0s",
        ]
    )

    assert stages(output) == "stack ready after 41.1s; feature_ingestion 60.2s; continuous_training 30.0s"
