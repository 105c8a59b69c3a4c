"""The apply guard's compatibility check, on plain definitions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from airflow_mlops_provider.core.features.specs import (
    FeatureDefinitions,
    FeatureServiceSpec,
    FeatureViewSpec,
    breaking_changes,
)

STATS = FeatureViewSpec(
    name="stats",
    entities={"customer_id": "Int64"},
    features={"tenure": "Int64", "charges": "Float64", "plan": "String"},
    timestamp_field="event_timestamp",
)
OTHER = FeatureViewSpec("other", {"customer_id": "Int64"}, {"x": "Float64"}, "event_timestamp")
SERVICE = FeatureServiceSpec("churn_v1", {"stats": {"tenure": "Int64", "charges": "Float64"}})
CURRENT = FeatureDefinitions(views={"stats": STATS, "other": OTHER}, services={"churn_v1": SERVICE})


def _with(views: list[FeatureViewSpec], services: list[FeatureServiceSpec] | None = None) -> FeatureDefinitions:
    return FeatureDefinitions(
        views={view.name: view for view in views},
        services={s.name: s for s in ([SERVICE] if services is None else services)},
    )


def test_unchanged_definitions_are_compatible() -> None:
    assert breaking_changes(CURRENT, CURRENT, "churn_v1") == []


@pytest.mark.parametrize(
    "proposed",
    [
        pytest.param(_with([replace(STATS, features={**STATS.features, "usage": "Float64"})]), id="new-feature"),
        pytest.param(_with([STATS, OTHER, replace(OTHER, name="new")]), id="new-view"),
        pytest.param(_with([STATS]), id="unused-view-removed"),
        pytest.param(_with([replace(STATS, features={"tenure": "Int64", "charges": "Float64"})]), id="unused-feature"),
        pytest.param(_with([replace(STATS, features={**STATS.features, "plan": "Int64"})]), id="unused-dtype"),
        pytest.param(_with([STATS], [SERVICE, FeatureServiceSpec("churn_v2", {"stats": {}})]), id="new-service"),
    ],
)
def test_changes_outside_the_service_are_compatible(proposed: FeatureDefinitions) -> None:
    assert breaking_changes(CURRENT, proposed, "churn_v1") == []


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        pytest.param(_with([OTHER]), ["feature view 'stats' is removed"], id="view-removed"),
        pytest.param(
            _with([replace(STATS, features={"tenure": "Int64", "plan": "String"})]),
            ["feature 'stats:charges' is removed"],
            id="feature-removed",
        ),
        pytest.param(
            _with([replace(STATS, features={**STATS.features, "tenure": "Float64"})]),
            ["feature 'stats:tenure' changes dtype from Int64 to Float64"],
            id="dtype-changed",
        ),
        pytest.param(
            _with([replace(STATS, entities={"account_id": "Int64"})]),
            ["entity keys of feature view 'stats' change from {'customer_id': 'Int64'} to {'account_id': 'Int64'}"],
            id="entity-changed",
        ),
        pytest.param(_with([STATS], []), ["feature service 'churn_v1' is removed"], id="service-removed"),
        pytest.param(
            _with([STATS], [FeatureServiceSpec("churn_v1", {"stats": {"tenure": "Int64"}})]),
            ["feature service 'churn_v1' no longer serves 'stats:charges'"],
            id="service-narrowed",
        ),
    ],
)
def test_breaking_changes_are_named(proposed: FeatureDefinitions, expected: list[str]) -> None:
    assert breaking_changes(CURRENT, proposed, "churn_v1") == expected


def test_every_break_is_listed() -> None:
    proposed = _with([replace(STATS, features={"tenure": "String"})])
    assert breaking_changes(CURRENT, proposed, "churn_v1") == [
        "feature 'stats:tenure' changes dtype from Int64 to String",
        "feature 'stats:charges' is removed",
    ]


def test_a_service_unknown_to_the_registry_protects_nothing() -> None:
    assert breaking_changes(CURRENT, _with([]), "never_applied") == []
