"""A missing extra fails with the command that installs it, before any work is done."""

from __future__ import annotations

import pytest

from airflow_mlops_provider import _optional
from airflow_mlops_provider._optional import MissingExtraError, import_optional, require_extra
from airflow_mlops_provider.operators.registry import PromoteModelOperator
from airflow_mlops_provider.operators.training import GPUTrainingOperator

INSTALL_TRAINER = 'pip install "airflow-mlops-provider[trainer]"'


@pytest.fixture
def trainer_extra_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_optional.EXTRAS, "trainer", ("torch", "no_such_module_xyz"))


def test_import_optional_names_the_extra() -> None:
    with pytest.raises(MissingExtraError, match=r"no_such_module_xyz.*'gx' extra.*airflow-mlops-provider\[gx\]"):
        import_optional("no_such_module_xyz", extra="gx")
    assert import_optional("json", extra="gx").dumps([]) == "[]"


def test_require_extra_lists_only_the_missing_modules(trainer_extra_missing: None) -> None:
    with pytest.raises(MissingExtraError) as err:
        require_extra("trainer")
    assert str(err.value).startswith("no_such_module_xyz not installed")
    assert INSTALL_TRAINER in str(err.value)


def test_every_declared_extra_is_installed_in_the_dev_environment() -> None:
    for extra in _optional.EXTRAS:
        require_extra(extra)


def test_promote_fails_fast_without_the_trainer_extra(trainer_extra_missing: None) -> None:
    op = PromoteModelOperator(task_id="p", model_name="m", version="1", holdout_uri="x.parquet", target="y")
    with pytest.raises(MissingExtraError, match=r"airflow-mlops-provider\[trainer\]"):
        op.execute({})  # type: ignore[arg-type]


def test_local_training_fails_fast_without_the_trainer_extra(trainer_extra_missing: None) -> None:
    op = GPUTrainingOperator(task_id="t", dataset_uri="x", target="y", backend="local", namespace="ml")
    with pytest.raises(MissingExtraError, match=r"airflow-mlops-provider\[trainer\]"):
        op.execute({})  # type: ignore[arg-type]
