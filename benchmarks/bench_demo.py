"""P9: ``DEMO_EXIT=1 make demo`` after install, wall time, against the goal of 2.5 minutes.

Runs the real command in the repository, with ``DEMO_HOME`` in a scratch directory, and ``make -o`` on the
install stamp so that an install that ``make`` would redo is never timed ("after install"). P9 has no
baseline: the goal stands in its column. The note gives the demo's own stages (stack start, each run).

Smoke run (the test suite): the same command with ``DEMO_PROFILE`` naming no profile, so the demo exits
before it starts a server: ``make``, the interpreter and the demo's imports, the cost every run pays first.

Run: ``.venv/bin/python -m benchmarks.bench_demo [--smoke]``
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Figure

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 150.0
INSTALL_STAMP = ".venv/.installed"
#: The smoke run's profile, which does not exist, and the message the demo must answer it with.
NO_PROFILE, NO_PROFILE_ERROR = "no-such-profile", "is not a profile"
#: The demo's lines worth a note: the stack's start and every run's end.
STAGES = re.compile(r"stack ready after [\d.]+s|^\S+ run \S+:|-> \w+ in [\d.]+s", re.MULTILINE)


def make_demo(env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``make demo`` with ``env`` added to this environment; return its wall time and result.

    :param env: the demo's variables.
    """
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "-o", INSTALL_STAMP, "demo"],
        cwd=REPO,
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, done


def stages(output: str) -> str:
    """The demo's stages, as one line: ``stack ready after 41.1s; feature_ingestion ... -> success in 9.0s; ...``.

    :param output: the demo's output.
    """
    found = [match.group(0) for match in STAGES.finditer(output)]
    pairs = zip(found[1::2], found[2::2], strict=False)  # a run that never ended has no second line
    runs = [f"{name.split(' run ')[0]} {end.split(' in ')[1]}" for name, end in pairs]
    return "; ".join(found[:1] + runs)


def run(smoke: bool) -> list[Figure]:
    """Time the whole demo, or (smoke) its start up to the settings check.

    :param smoke: the start only.
    """
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        env = {"DEMO_EXIT": "1", "DEMO_HOME": str(Path(scratch) / "demo")}
        if smoke:
            env["DEMO_PROFILE"] = NO_PROFILE
        seconds, done = make_demo(env)
    output = done.stdout + done.stderr
    if smoke and NO_PROFILE_ERROR not in output:
        raise RuntimeError(f"the demo did not refuse DEMO_PROFILE={NO_PROFILE}:\n{output[-3000:]}")
    if not smoke and done.returncode != 0:
        raise RuntimeError(f"make demo exited with {done.returncode}:\n{output[-3000:]}")
    what = "`make demo` up to its settings check (no server)" if smoke else "`DEMO_EXIT=1 make demo`, after install"
    return [
        Figure(
            goal_id="P9",
            what=what,
            ours=seconds,
            baseline=GOAL_SECONDS,
            baseline_name="the goal (P9 has no baseline)",
            unit="s",
            goal=f"<= {GOAL_SECONDS:g} s",
            met=seconds <= GOAL_SECONDS,
            note=stages(output) if not smoke else "the start every demo pays first",
        )
    ]


def main() -> None:
    """Print the figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="the start only")
    for figure in run(parser.parse_args().smoke):
        print(f"{figure.what}: {figure.ours:.1f} s (goal {figure.goal}); {figure.note}")


if __name__ == "__main__":
    main()
