"""ModelQualityOperator's wiring: the decay event goes through an alias outlet, its fields are templated.

Its runs against a real MLflow server (champion, holdout score, events, MLflow metrics) are in
tests/integration/test_model_quality.py.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.operators.quality import ModelQualityOperator

DECAY = Asset(name="churn_quality_decay", uri="mlops://quality/churn/decay", group="model")


def test_the_decay_event_has_an_alias_outlet_and_the_settings_are_rendered() -> None:
    op = ModelQualityOperator(
        task_id="check_quality", model_name="{{ params.model }}", entity_columns="customer_id",
        min_value="{{ params.floor }}", max_drop=None, window="{{ params.window }}", decay_asset=DECAY,
        episode_policy=EpisodePolicy(cooldown_seconds=60),
    )  # fmt: skip
    assert op.outlets == [AssetAlias(name="churn_quality_decay__on_decay")]
    assert op.entity_columns == ["customer_id"] and op.episode_policy.cooldown_seconds == 60
    op.render_template_fields({"params": {"model": "churn", "floor": 0.7, "window": "6h"}})
    assert (op.model_name, op.min_value, op.window) == ("churn", "0.7", "6h")


def test_without_a_decay_asset_there_is_no_outlet() -> None:
    op = ModelQualityOperator(task_id="check_quality", model_name="churn", entity_columns=["id"], min_value=0.5)
    assert op.outlets == [] and op.decay_event is None
