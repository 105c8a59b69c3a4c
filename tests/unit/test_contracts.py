"""The shared vocabulary: every key is named once, in contracts, and means one thing."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from typing import Any, is_typeddict

from airflow_mlops_provider import contracts
from airflow_mlops_provider.contracts import PROBLEM_TYPES, ProblemType, RunParam, Tag
from airflow_mlops_provider.training.options import TrainConfig
from tests.paths import REPO

PACKAGE = REPO / "airflow_mlops_provider"
#: What only contracts.py may spell out.
VOCABULARY = re.compile(r"mlops\.[a-z_.]+|champion|previous_champion")


def _members(cls: type) -> dict[str, Any]:
    return {name: value for name, value in vars(cls).items() if name.isupper()}


def test_tag_keys_are_distinct_and_namespaced() -> None:
    keys = [value for value in _members(Tag).values() if isinstance(value, str)]
    assert len(keys) == len(set(keys))
    assert [key for key in keys if not key.startswith("mlops.")] == [Tag.REJECTED]


def test_tag_groups_hold_tag_keys() -> None:
    keys = {value for value in _members(Tag).values() if isinstance(value, str)}
    assert set(Tag.LINEAGE) <= keys and set(Tag.PROMOTION_TAGS) <= keys
    assert Tag.AIRFLOW_DAG_ID in Tag.LINEAGE and Tag.AIRFLOW_RUN_ID in Tag.LINEAGE


def test_the_split_policy_and_holdout_digest_are_lineage() -> None:
    """Registration copies them onto the version: promotion and drift re-apply the policy."""
    assert {Tag.SPLIT_POLICY, Tag.HOLDOUT_DIGEST} <= set(Tag.LINEAGE)
    assert (Tag.SPLIT_POLICY, Tag.HOLDOUT_DIGEST) == ("mlops.split_policy", "mlops.holdout_digest")
    assert RunParam.SPLIT_POLICY in {field.name for field in fields(TrainConfig)}


def test_airflow_identity_tags_say_they_are_airflows() -> None:
    identity = [Tag.AIRFLOW_DAG_ID, Tag.AIRFLOW_RUN_ID, Tag.AIRFLOW_TASK_ID, Tag.AIRFLOW_TRY_NUMBER]
    assert all(key.startswith("mlops.airflow_") for key in identity)


def test_run_params_are_the_trainers_config_fields() -> None:
    assert set(_members(RunParam).values()) <= {field.name for field in fields(TrainConfig)}


def test_problem_types() -> None:
    assert set(PROBLEM_TYPES) == set(_members(ProblemType).values())


def test_results_never_say_run_id_for_mlflows_run() -> None:
    results = [value for value in vars(contracts).values() if is_typeddict(value)]
    assert contracts.TrainingResult in results and contracts.RegistrationResult in results
    assert [result.__name__ for result in results if "run_id" in result.__annotations__] == []
    assert "mlflow_run_id" in contracts.TrainingResult.__annotations__
    assert "mlflow_run_id" in contracts.RegistrationResult.__annotations__


def test_the_vocabulary_is_spelled_out_only_in_contracts() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "contracts.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and VOCABULARY.fullmatch(node.value):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert found == []
