"""docs/tutorial.md is true: its exact commands scaffold two pipelines that parse, train and promote a champion.

The tutorial's ``bash`` blocks run in order in one shell, in a temporary working folder, against the
session's real ``mlflow server`` (the block that would start one is ``sh``, not ``bash``, so it is left
out), with a fresh Airflow home and SQLite database, as a user would run them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from airflow_mlops_provider.contracts import CHAMPION, PROMOTED, Tag
from tests.fixtures.mlflow_server import MlflowServer
from tests.paths import REPO

pytestmark = pytest.mark.integration
TUTORIAL = REPO / "docs" / "tutorial.md"
#: The pipelines the tutorial scaffolds: a binary classifier and a regression.
PIPELINES = ("cancer", "diabetes")
SCRIPT_TIMEOUT = 1200


def tutorial_script() -> str:
    """The tutorial's ``bash`` blocks, in order, as one script that stops at the first failing command."""
    blocks = re.findall(r"```bash\n(.*?)```", TUTORIAL.read_text(), flags=re.DOTALL)
    return "set -euo pipefail\n" + "\n".join(blocks)


@pytest.mark.timeout(SCRIPT_TIMEOUT + 120)
def test_the_tutorial_runs_and_each_pipeline_promotes_a_champion(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    env = os.environ | {"WORK": str(tmp_path / "work"), "MLFLOW_URL": mlflow_server.tracking_uri}
    with subprocess.Popen(
        ["bash", "-c", tutorial_script()], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    ) as script:  # fmt: skip
        try:
            output, _ = script.communicate(timeout=SCRIPT_TIMEOUT)
        finally:  # a timeout or an interrupt leaves no Airflow or trainer process behind
            if script.poll() is None:
                os.killpg(script.pid, signal.SIGKILL)
                script.wait()
    log = output[-20000:]
    assert script.returncode == 0, log

    work = tmp_path / "work"
    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    for name in PIPELINES:
        assert (work / "dags" / f"{name}_ct.py").is_file() and (
            work / "dags" / "expectations" / f"{name}.json"
        ).is_file()
        champion = client.get_model_version_by_alias(name, CHAMPION)
        assert champion.tags[Tag.PROMOTION_DECISION] == PROMOTED, log
        assert champion.run_id is not None
        run = client.get_run(champion.run_id)
        assert Tag.HOLDOUT_DIGEST in run.data.tags  # promotion scored the rows the trainer held out
    assert "SplitPolicy" in (work / "dags" / "diabetes_ct.py").read_text()
