"""The preloading LocalExecutor: its workers (the parents of every task process) hold the tasks' libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlops_provider import _optional
from airflow_mlops_provider.preload import TASK_IMPORTS, preload_task_modules

#: Starts an executor (class path in argv[1], start method in argv[2]), reports what its workers have loaded.
_START_EXECUTOR = """
import json, multiprocessing, sys
multiprocessing.set_start_method(sys.argv[2])
from airflow._shared.module_loading import import_string
executor = import_string(sys.argv[1])(parallelism=2)
executor.start()
workers = list(executor.workers)
maps = {pid: open(f"/proc/{pid}/maps").read() for pid in workers}
executor.end()
print(json.dumps({
    "workers": len(workers),
    "torch_in_workers": [("libtorch" in text) for text in maps.values()],
    "torch_in_parent": "torch" in sys.modules,
}))
"""


def start_executor(executor: str, start_method: str, home: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _START_EXECUTOR, executor, start_method],
        env={"PATH": str(Path(sys.executable).parent), "AIRFLOW_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_workers_of_the_preloading_executor_hold_torch_and_the_plain_ones_do_not(tmp_path: Path) -> None:
    preloading = start_executor("airflow_mlops_provider.preload.PreloadingLocalExecutor", "fork", tmp_path)
    plain = start_executor("airflow.executors.local_executor.LocalExecutor", "fork", tmp_path)

    assert preloading == {"workers": 2, "torch_in_workers": [True, True], "torch_in_parent": True}
    assert plain == {"workers": 2, "torch_in_workers": [False, False], "torch_in_parent": False}


def test_without_fork_nothing_is_preloaded_as_the_workers_would_not_inherit_it(tmp_path: Path) -> None:
    result = start_executor("airflow_mlops_provider.preload.PreloadingLocalExecutor", "spawn", tmp_path)

    assert result["torch_in_parent"] is False


def test_an_extra_that_is_not_installed_is_skipped_and_the_others_are_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_optional.EXTRAS, "gx", ("no_such_module_of_the_gx_extra",))
    imports = {None: ("json",), "gx": ("great_expectations",), "trainer": ("pandas",)}

    seconds = preload_task_modules(imports)

    assert sorted(seconds) == ["base", "trainer"]
    assert all(value >= 0 for value in seconds.values())


def test_the_preload_covers_every_operator_module_and_every_extra() -> None:
    operators = sorted(p.stem for p in (Path(_optional.__file__).parent / "operators").glob("*.py"))
    preloaded = {str(target).rsplit(".", 1)[-1] for target in TASK_IMPORTS[None]}

    assert set(operators) - {"__init__", "base", "training_pod"} <= preloaded
    assert set(TASK_IMPORTS) - {None} == set(_optional.EXTRAS)


@pytest.mark.parametrize(("backend", "loaded"), [("kubernetes", True), ("local", False)])
def test_the_kubernetes_clients_are_preloaded_only_for_the_kubernetes_backend(
    tmp_path: Path, backend: str, loaded: bool
) -> None:
    code = (
        "import sys\n"
        "from airflow_mlops_provider.preload import TASK_IMPORTS, preload_task_modules\n"
        "preload_task_modules({None: TASK_IMPORTS[None]})\n"
        "print('airflow_mlops_provider.operators.training_pod' in sys.modules, 'kubernetes' in sys.modules)\n"
    )
    env = {"PATH": str(Path(sys.executable).parent), "AIRFLOW_HOME": str(tmp_path)}
    env["AIRFLOW__MLOPS__TRAINING_BACKEND"] = backend
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == [str(loaded), str(loaded)]
