"""Every example DAG and task has a clean page in the UI: docs, an owner, tags, and documented, bounded Params.

Parsed as Airflow's DAG processor parses a bundle: with its folder on ``sys.path`` (for ``churn_common``).
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.dag_processing.dagbag import BundleDagBag, DagBag
from airflow.sdk.definitions.param import Param

from tests.paths import DAGS

#: The DAG files of dags/: not the modules they share, which .airflowignore lists.
IGNORED = {line.strip() for line in (DAGS / ".airflowignore").read_text().splitlines() if not line.startswith("#")}
DAG_FILES = sorted(p.name for p in DAGS.glob("*.py") if p.name not in IGNORED)


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def dags_of(bag: DagBag, file_name: str) -> list[Any]:
    """The DAGs that ``file_name`` defines (at least one)."""
    dags = [dag for dag in bag.dags.values() if dag.fileloc == str(DAGS / file_name)]
    assert dags, f"{file_name} defines no DAG: {bag.import_errors}"
    return dags


def param_problems(name: str, param: Param) -> list[str]:
    """What the trigger form would lack for ``param``: a description, a type, bounds, a valid default."""
    schema = param.schema
    problems = [] if param.description else [f"{name}: no description"]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        if not {"minimum", "exclusiveMinimum"} & set(schema):
            problems.append(f"{name}: no minimum")
        if not {"maximum", "exclusiveMaximum"} & set(schema):
            problems.append(f"{name}: no maximum")
    elif kind == "string":
        if not {"enum", "pattern", "maxLength"} & set(schema):
            problems.append(f"{name}: a string Param needs an enum, a pattern or a maxLength")
    elif kind != "boolean":
        problems.append(f"{name}: type {kind!r} (integer, number, string or boolean, for the form)")
    param.resolve()  # the default satisfies the schema
    return problems


@pytest.mark.parametrize("file_name", DAG_FILES)
def test_every_dag_and_task_is_documented_owned_and_tagged(bag: DagBag, file_name: str) -> None:
    for dag in dags_of(bag, file_name):
        assert dag.doc_md and dag.doc_md.strip(), f"{dag.dag_id}: no doc_md"
        assert dag.tags, f"{dag.dag_id}: no tags"
        owner = dag.default_args.get("owner")
        assert owner and owner != "airflow", f"{dag.dag_id}: default_args has no owner of its own"
        for task in dag.tasks:
            assert task.owner == owner, f"{dag.dag_id}.{task.task_id}: owner {task.owner!r}"
            assert (task.doc_md or task.doc or "").strip(), f"{dag.dag_id}.{task.task_id}: no doc_md or doc"


@pytest.mark.parametrize("file_name", DAG_FILES)
def test_every_param_has_a_description_and_bounds(bag: DagBag, file_name: str) -> None:
    for dag in dags_of(bag, file_name):
        problems = [p for name in dag.params for p in param_problems(name, dag.params.get_param(name))]
        assert problems == [], f"{dag.dag_id}: {problems}"


def test_the_checks_catch_an_undocumented_or_unbounded_param() -> None:
    assert param_problems("n", Param(1, type="integer", minimum=0)) == ["n: no description", "n: no maximum"]
    assert param_problems("s", Param("x", type="string", description="d")) == [
        "s: a string Param needs an enum, a pattern or a maxLength"
    ]
    assert param_problems("ok", Param(1, type="integer", minimum=0, maximum=3, description="d")) == []
