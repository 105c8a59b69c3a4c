"""The local trainer's process: forked while the task process has only Python threads, a new interpreter once a
native thread pool runs (a fork would inherit OpenMP's pool without its threads and hang in its first parallel
region). Each case runs in a fresh interpreter, as a task process is one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import REPO

SCRIPT = """
import json, os, sys
if sys.argv[1] == "after_torch":
    import torch
    torch.set_num_threads(2)
    torch.randn(4_000_000).sort()  # a parallel region: OpenMP's pool now runs in this process
from airflow_mlops_provider.training.local_process import LocalTrainer
trainer = LocalTrainer(["--help"], dict(os.environ))
output = list(trainer.lines())
print(json.dumps({"forked": trainer.forked, "how": trainer.how, "code": trainer.wait(120), "output": output}))
"""


def start(case: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, case], cwd=REPO, capture_output=True, text=True, timeout=240, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.integration
def test_a_process_with_only_python_threads_forks_the_trainer() -> None:
    result = start("fresh")
    assert result["forked"] is True and result["how"] == "in a fork of the task process"
    assert result["code"] == 0 and any("usage:" in line for line in result["output"])  # type: ignore[union-attr]


@pytest.mark.integration
def test_after_a_torch_computation_the_trainer_gets_a_new_interpreter_and_does_not_hang() -> None:
    result = start("after_torch")
    assert result["forked"] is False and "new interpreter" in str(result["how"])
    assert result["code"] == 0 and any("usage:" in line for line in result["output"])  # type: ignore[union-attr]
