"""The README's code is true: every complete Python example in it runs (it builds DAGs and tasks, nothing more)."""

from __future__ import annotations

import re

import pytest

from tests.paths import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
#: Fragments that continue an earlier example (``...`` stands for its arguments) cannot run alone.
COMPLETE = [block for block in BLOCKS if "...," not in block]


def test_the_readme_has_complete_examples() -> None:
    assert len(COMPLETE) >= 2


@pytest.mark.parametrize("block", COMPLETE, ids=[f"example{i}" for i in range(len(COMPLETE))])
def test_a_readme_example_runs(block: str) -> None:
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    created = [value for value in namespace.values() if type(value).__name__.endswith(("Operator", "DAG", "Asset"))]
    assert created, "the example defines no DAG, operator or Asset"
