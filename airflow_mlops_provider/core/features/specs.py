"""Feast-free descriptions of feature views and services, and the compatibility check of the apply guard.

A model version records the feature service it was trained on (tag
:attr:`~airflow_mlops_provider.contracts.Tag.FEATURE_SERVICE`). Applying new feature definitions must not
break what that service serves; :func:`breaking_changes` compares the current and the proposed definitions
and names every break.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeatureViewSpec:
    """A feature view's shape: what a batch must hold and where its offline data lives.

    :param name: the view's name.
    :param entities: join key -> Feast dtype name (e.g. ``"Int64"``).
    :param features: feature -> Feast dtype name (e.g. ``"Float64"``, ``"String"``).
    :param timestamp_field: the event timestamp column of the batch source.
    :param source_uri: the resolved path or URI of the batch source (a directory ends with ``/``).
    """

    name: str
    entities: Mapping[str, str]
    features: Mapping[str, str]
    timestamp_field: str
    source_uri: str = ""

    @property
    def columns(self) -> list[str]:
        """The columns of the view's offline data, in order: entity keys, timestamp, features."""
        return [*self.entities, self.timestamp_field, *self.features]


@dataclass(frozen=True)
class FeatureServiceSpec:
    """The features a feature service serves.

    :param name: the service's name.
    :param features: feature view -> {feature: Feast dtype name}.
    """

    name: str
    features: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class FeatureDefinitions:
    """A set of feature definitions: what a registry holds, or what a feature repo proposes.

    :param views: feature views by name.
    :param services: feature services by name.
    """

    views: Mapping[str, FeatureViewSpec] = field(default_factory=dict)
    services: Mapping[str, FeatureServiceSpec] = field(default_factory=dict)


def breaking_changes(current: FeatureDefinitions, proposed: FeatureDefinitions, service: str) -> list[str]:
    """List how ``proposed`` breaks what ``service`` serves under ``current``; empty when compatible.

    A break is a removed feature view, a changed entity key, a removed feature, a feature whose dtype
    changes, or a service that no longer serves a feature it served. Adding views, features or services
    never breaks. A service unknown to ``current`` serves nothing yet, so nothing can break.

    :param current: the definitions in use (the registry).
    :param proposed: the definitions about to be applied (the feature repo).
    :param service: the feature service to protect, e.g. the champion model's.
    """
    served = current.services.get(service)
    if served is None:
        return []
    problems: list[str] = []
    new_service = proposed.services.get(service)
    if new_service is None:
        problems.append(f"feature service {service!r} is removed")
    for view_name, features in served.features.items():
        view = proposed.views.get(view_name)
        if view is None:
            problems.append(f"feature view {view_name!r} is removed")
            continue
        old_view = current.views.get(view_name)
        if old_view is not None and dict(old_view.entities) != dict(view.entities):
            problems.append(
                f"entity keys of feature view {view_name!r} change from {dict(old_view.entities)} to "
                f"{dict(view.entities)}"
            )
        kept = new_service.features.get(view_name, {}) if new_service is not None else None
        for feature, dtype in features.items():
            ref = f"{view_name}:{feature}"
            if feature not in view.features:
                problems.append(f"feature {ref!r} is removed")
            elif view.features[feature] != dtype:
                problems.append(f"feature {ref!r} changes dtype from {dtype} to {view.features[feature]}")
            elif kept is not None and feature not in kept:
                problems.append(f"feature service {service!r} no longer serves {ref!r}")
    return problems
