"""BatchInferenceOperator's arguments: refused at DAG definition when they cannot work; nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_mlops_provider.contracts import Unscorable
from airflow_mlops_provider.operators.inference import BatchInferenceOperator


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs one of entities_uri"),
        ({"entities_uri": "/e/", "features_uri": "/f.parquet", "feature_service": "s"}, "needs one of entities_uri"),
        ({"entities_uri": "/e/"}, "needs feature_service"),
        ({"features_uri": "/f.parquet"}, "needs entity_columns"),
        ({"features_uri": "/f.parquet", "entity_columns": ["id"], "chunk_rows": 0}, "chunk_rows must be a positive"),
        ({"features_uri": "/f.parquet", "entity_columns": ["id"], "unscorable": "skip"}, "unscorable must be one of"),
        ({"features_uri": "/f.parquet", "entity_columns": ["id"], "unscorable": Unscorable.FILL}, "needs fill_values"),
        ({"features_uri": "/f.parquet", "entity_columns": ["id"], "max_unscorable_fraction": 2}, r"in \[0, 1\]"),
    ],
)
def test_unusable_arguments_are_refused_at_definition(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchInferenceOperator(task_id="score", model_name="churn", **kwargs)  # type: ignore[arg-type]


def test_run_dependent_arguments_are_templated() -> None:
    op = BatchInferenceOperator(task_id="score", model_name="churn", entities_uri="/e/", feature_service="s")

    assert set(op.template_fields) == {
        "model_name", "entities_uri", "features_uri", "feature_service", "window_start", "window_end",
        "predictions_uri",
    }  # fmt: skip
    assert op.multiple_outputs and op.policy.action == Unscorable.DROP and op.chunk_rows == 50_000


def test_defining_the_operator_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from airflow_mlops_provider.operators.inference import BatchInferenceOperator\n"
        "BatchInferenceOperator(task_id='s', model_name='m', features_uri='/f.parquet', entity_columns=['id'],"
        " unscorable='fill', fill_values={'a': 1})\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'mlflow', 'torch', 'feast') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"
