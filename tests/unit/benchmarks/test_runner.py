"""``python -m benchmarks``: the table it writes, whatever the modules did."""

from __future__ import annotations

import math

from benchmarks.__main__ import GOALS, ModuleRun, discover, machine, render
from benchmarks.harness import Figure


def figure(goal_id: str, ours: float, baseline: float, met: bool, note: str = "") -> Figure:
    return Figure(goal_id, f"what {goal_id}", ours, baseline, "the baseline", "s", "ratio <= 1.2", met, note)


def row(table: str, goal_id: str) -> str:
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {goal_id} |")]
    return line


def test_a_figure_is_shown_beside_its_baseline_with_the_ratio_and_whether_it_met_the_goal() -> None:
    table = render([ModuleRun("bench_parse", 3.0, [figure("P1", 0.6, 0.5, met=True, note="a | b")])], machine(), False)

    assert row(table, "P1") == (
        "| P1 | what P1 | 0.6 s | 0.5 s (the baseline) | 1.20x | ratio <= 1.2 | yes | a \\| b |"
    )
    assert "**no**" in render([ModuleRun("bench_parse", 3.0, [figure("P1", 2.0, 0.5, met=False)])], machine(), False)


def test_every_goal_has_a_row_and_says_why_when_it_was_not_measured() -> None:
    runs = [
        ModuleRun("bench_parse", 1.0, [figure("P1", 1.0, 1.0, met=True)]),
        ModuleRun("bench_ct", 40.0, error="exit code 1:\nRuntimeError: the stack died"),
        ModuleRun("bench_demo", 1.0, []),
    ]
    table = render(runs, machine(), smoke=False)

    assert [row(table, goal_id).split(" | ")[0] for goal_id in GOALS] == [f"| {goal_id}" for goal_id in GOALS]
    assert row(table, "P7").endswith("not measured: bench_inference was not run |")
    assert row(table, "P6").endswith("not measured: bench_ct failed (below) |")
    assert "RuntimeError: the stack died" in table.split("## Modules that failed")[1]
    assert row(table, "P9").endswith("not measured: bench_demo returned no P9 figure |")
    assert "was not run" in row(table, "P2") or "no bench_drift.py" in row(table, "P2")
    assert "Smoke run" not in table


def test_the_table_records_the_machine_and_marks_a_smoke_run() -> None:
    facts = machine()
    table = render([], facts, smoke=True)

    assert int(facts["cores"]) >= 1
    assert all(math.isfinite(float(load)) for load in facts["load average (1, 5, 15 min)"].split(", "))
    assert f"- cores: {facts['cores']}" in table
    assert f"- apache-airflow: {facts['apache-airflow']}" in table
    assert "**Smoke run: tiny sizes, once each." in table


def test_discover_finds_the_modules_of_the_goals() -> None:
    modules = discover()

    assert {"bench_parse", "bench_ct", "bench_demo"} <= set(modules)
    assert all(name.startswith("bench_") for name in modules)
