"""Feast glue, Airflow-free: open a store, load a feature repo's definitions, apply them, describe them.

Feast is imported on first use only. Feast 0.67 imports torch eagerly: every ``feast`` import runs
``feast/__init__``, which reaches ``feast.infra.offline_stores.offline_store`` and its
``feast.torch_wrapper``, whose module body imports torch (about 2 s) just to offer tensor output.
Importing a submodule such as ``feast.feature_store`` does not avoid it, because the package
``__init__`` runs first. :func:`import_feast` therefore registers a stand-in ``feast.torch_wrapper``
whose ``get_torch()`` imports torch only when tensors are asked for.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider._optional import import_optional
from airflow_mlops_provider.core.features.specs import FeatureDefinitions, FeatureServiceSpec, FeatureViewSpec

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore
    from feast.repo_contents import RepoContents

_TORCH_WRAPPER = "feast.torch_wrapper"
#: Seconds a Redis online store client waits to connect, and for a reply, unless its connection string says:
#: redis-py waits forever by default, so a stopped or hung server would hang a task until its timeout.
REDIS_TIMEOUTS = {"socket_connect_timeout": 5, "socket_timeout": 10}
#: The Redis client's settings :func:`open_store` adds unless the connection string sets them: the timeouts,
#: and no retry inside the client (``retry=null``). redis-py 6+ retries a timed-out command 3 times with up to
#: 14 s of backoff, which would hold a task on a hung server for 4 timeouts; the Airflow task's retry is the
#: retry layer, and a materialization is safe to run again.
REDIS_CLIENT_DEFAULTS: dict[str, float | None] = {**REDIS_TIMEOUTS, "retry": None}


def _lazy_torch_wrapper() -> ModuleType:
    """A ``feast.torch_wrapper`` with the same ``get_torch()`` contract that imports torch on first call."""
    module = ModuleType(_TORCH_WRAPPER, "Stand-in registered by airflow_mlops_provider: torch is imported on use.")

    def get_torch() -> ModuleType:
        try:
            return importlib.import_module("torch")
        except Exception as err:  # like feast's wrapper: a broken CUDA install must not break feast
            raise ImportError(f"Torch is not available or failed to import: {err}") from err

    module.get_torch = get_torch  # type: ignore[attr-defined]
    return module


def import_feast() -> ModuleType:
    """Import ``feast`` without importing torch, or fail naming the ``feast`` extra."""
    if "feast" not in sys.modules and "torch" not in sys.modules:
        sys.modules.setdefault(_TORCH_WRAPPER, _lazy_torch_wrapper())
    return import_optional("feast", extra="feast")


def open_store(repo_path: str | None, feature_store_yaml: str | None = None) -> FeatureStore:
    """Open a feature store from a repo directory, or from an inline ``feature_store.yaml``.

    :param repo_path: the feature repo; relative paths in the config resolve against it (against the
        working directory when it is ``None``).
    :param feature_store_yaml: the text of a ``feature_store.yaml``; ``None`` reads
        ``<repo_path>/feature_store.yaml``. Either way ``${VAR}`` is expanded from the environment.
    :raises ValueError: neither is given, or the config is unreadable or invalid.
    """
    feast = import_feast()
    import yaml
    from feast.errors import FeastError
    from feast.repo_config import FeastConfigError, RepoConfig
    from pydantic import ValidationError

    if feature_store_yaml is None and not repo_path:
        raise ValueError("give a feature repo path or an inline feature_store.yaml")
    root = Path(repo_path) if repo_path else Path.cwd()
    source = "inline feature_store.yaml" if feature_store_yaml is not None else str(root / "feature_store.yaml")
    try:
        text = (root / "feature_store.yaml").read_text() if feature_store_yaml is None else feature_store_yaml
        config = RepoConfig(**yaml.safe_load(os.path.expandvars(text)))
    except (OSError, TypeError, yaml.YAMLError, ValidationError, FeastError, FeastConfigError) as err:
        raise ValueError(f"invalid {source}: {type(err).__name__}: {err}") from err
    config.repo_path = root
    online = config.online_store
    if getattr(online, "type", None) == "redis":
        online.connection_string = bounded_redis(online.connection_string)
    return feast.FeatureStore(repo_path=str(root), config=config)


def bounded_redis(connection_string: str) -> str:
    """Add :data:`REDIS_CLIENT_DEFAULTS` to a Feast Redis ``connection_string`` that does not set them.

    :param connection_string: ``host:port[,key=value...]``, as Feast's ``redis`` online store reads it (each
        value JSON-decoded when it can be).
    """
    given = {part.split("=", 1)[0].strip() for part in connection_string.split(",") if "=" in part}
    missing = [f"{key}={json.dumps(value)}" for key, value in REDIS_CLIENT_DEFAULTS.items() if key not in given]
    return ",".join([connection_string, *missing])


def online_store_address(store: FeatureStore) -> str:
    """The online store, as a message names it: its type and, for a server, where it is (no credentials).

    :param store: the feature store.
    """
    online = store.config.online_store
    kind = getattr(online, "type", "online store")
    if kind == "redis":
        nodes = [part for part in online.connection_string.split(",") if "=" not in part]
        return f"redis at {', '.join(nodes)}"
    path = getattr(online, "path", None)
    return f"{kind} at {path}" if path else str(kind)


def load_repo(store: FeatureStore, repo_path: str) -> RepoContents:
    """Collect the Feast objects defined by the ``*.py`` files of a feature repo, as ``feast apply`` does,
    with their entity and feature columns inferred as they will be registered.

    Unlike ``feast apply`` it neither changes the working directory nor reuses modules imported from
    another repo with the same file names, so several repos load in one process.

    :param store: the store the repo is for; a ``Project`` defined in the repo must match its project.
    :param repo_path: the feature repo directory.
    """
    feast = import_feast()
    from feast.data_source import DataSource
    from feast.feature_view import DUMMY_ENTITY
    from feast.inference import update_feature_views_with_inferred_features_and_entities
    from feast.labeling.label_view import LabelView
    from feast.permissions.permission import Permission
    from feast.repo_contents import RepoContents

    kinds: list[tuple[type, str]] = [  # subclasses before their bases
        (feast.StreamFeatureView, "stream_feature_views"),
        (feast.FeatureView, "feature_views"),
        (feast.OnDemandFeatureView, "on_demand_feature_views"),
        (LabelView, "label_views"),
        (feast.Entity, "entities"),
        (feast.FeatureService, "feature_services"),
        (DataSource, "data_sources"),
        (Permission, "permissions"),
        (feast.Project, "projects"),
    ]
    found: dict[str, list[Any]] = {name: [] for _, name in kinds}

    def add(obj: Any) -> None:
        for kind, name in kinds:
            if isinstance(obj, kind):
                if not any(obj is seen for seen in found[name]):
                    found[name].append(obj)
                return

    for module in _import_repo_modules(Path(repo_path)):
        for obj in vars(module).values():
            add(obj)
    for view in [*found["feature_views"], *found["stream_feature_views"]]:
        for source in (view.batch_source, view.stream_source):
            if source is not None:
                add(source)
    if not found["projects"]:
        found["projects"].append(feast.Project(name=store.project))
    elif [p.name for p in found["projects"]] != [store.project]:
        names = [p.name for p in found["projects"]]
        raise ValueError(f"{repo_path} defines projects {names}, expected {store.project!r}")
    found["entities"].append(DUMMY_ENTITY)
    entities = [*store.list_entities(), *found["entities"]]
    for views in (found["feature_views"], found["stream_feature_views"]):
        update_feature_views_with_inferred_features_and_entities(store._get_provider(), views, entities, store.config)
    return RepoContents(**found)


@contextmanager
def _isolated_imports(repo: Path, names: list[str]) -> Iterator[None]:
    """Import ``names`` fresh from ``repo`` (writing no bytecode into it), then restore ``sys.path``,
    ``sys.modules`` and the bytecode setting as they were."""
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in names}
    sys.path.insert(0, str(repo))
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.dont_write_bytecode = write_bytecode
        sys.path.remove(str(repo))
        for name in [n for n in sys.modules if n.split(".")[0] in names]:
            del sys.modules[name]
        sys.modules.update(saved)


def _import_repo_modules(repo: Path) -> list[ModuleType]:
    """Import the repo's Python files that ``feast apply`` would (``.feastignore`` is honoured)."""
    from feast.repo_operations import get_repo_files

    root = repo.resolve()
    names = [".".join(path.relative_to(root).with_suffix("").parts) for path in get_repo_files(root)]
    with _isolated_imports(root, sorted({name.split(".")[0] for name in names})):
        return [importlib.import_module(name) for name in names]


def apply_repo(store: FeatureStore, repo: RepoContents) -> None:
    """Apply ``repo`` like ``feast apply``: create or update its objects, delete registry objects it lacks.

    :param store: the feature store.
    :param repo: the definitions, from :func:`load_repo`.
    """
    from feast.repo_operations import apply_total_with_repo_instance

    apply_total_with_repo_instance(store, store.project, store.registry, repo, skip_source_validation=False)


def view_spec(view: Any, repo_path: str | Path | None = None) -> FeatureViewSpec:
    """Describe a Feast feature view (or on-demand view, which has no entities or source).

    :param view: a ``FeatureView`` or ``OnDemandFeatureView``.
    :param repo_path: the repo relative source paths resolve against.
    """
    source = getattr(view, "batch_source", None)
    path = str(getattr(source, "path", "") or "")
    if path and repo_path is not None and "://" not in path and not Path(path).is_absolute():
        path = str(Path(repo_path) / path) + ("/" if path.endswith("/") else "")
    return FeatureViewSpec(
        name=view.name,
        entities={f.name: str(f.dtype) for f in getattr(view, "entity_columns", [])},
        features={f.name: str(f.dtype) for f in view.features},
        timestamp_field=getattr(source, "timestamp_field", "") or "",
        source_uri=path,
    )


def service_spec(service: Any) -> FeatureServiceSpec:
    """Describe a Feast feature service: the features it serves, per view.

    :param service: a ``FeatureService``.
    """
    return FeatureServiceSpec(
        name=service.name,
        features={
            projection.name: {f.name: str(f.dtype) for f in projection.features}
            for projection in service.feature_view_projections
        },
    )


def registry_definitions(store: FeatureStore) -> FeatureDefinitions:
    """The feature views and services in the store's registry.

    :param store: the feature store.
    """
    views = [*store.list_feature_views(), *store.list_on_demand_feature_views()]
    return FeatureDefinitions(
        views={view.name: view_spec(view, store.repo_path) for view in views},
        services={service.name: service_spec(service) for service in store.list_feature_services()},
    )


def repo_definitions(repo: RepoContents, repo_path: str) -> FeatureDefinitions:
    """The feature views and services a feature repo defines.

    :param repo: the definitions, from :func:`load_repo`.
    :param repo_path: the repo relative source paths resolve against.
    """
    views = [*repo.feature_views, *repo.stream_feature_views, *repo.on_demand_feature_views]
    return FeatureDefinitions(
        views={view.name: view_spec(view, repo_path) for view in views},
        services={service.name: service_spec(service) for service in repo.feature_services},
    )


def feature_view(store: FeatureStore, name: str) -> FeatureViewSpec:
    """Describe a registered feature view.

    :param store: the feature store.
    :param name: the view's name.
    :raises LookupError: the registry has no such view.
    """
    from feast.errors import FeatureViewNotFoundException

    try:
        return view_spec(store.get_feature_view(name), store.repo_path)
    except FeatureViewNotFoundException:
        known = sorted(view.name for view in store.list_feature_views())
        raise LookupError(
            f"feature view {name!r} is not registered in project {store.project!r} (registered: {known}); "
            "apply the feature repo first"
        ) from None


def feature_service(store: FeatureStore, name: str) -> tuple[list[str], FeatureServiceSpec]:
    """Describe a registered feature service, with the entity keys its views join on.

    :param store: the feature store.
    :param name: the service's name.
    :raises LookupError: the registry has no such service.
    """
    definitions = registry_definitions(store)
    service = definitions.services.get(name)
    if service is None:
        raise LookupError(f"feature service {name!r} is not registered (registered: {sorted(definitions.services)})")
    entities: list[str] = []
    for view in service.features:
        entities += [key for key in definitions.views[view].entities if key not in entities]
    return entities, service


def historical_features(store: FeatureStore, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Run Feast's point-in-time join for ``service`` (rows may come back dropped and reordered).

    :param store: the feature store.
    :param service: the feature service's name.
    :param entity_df: entity keys and one timestamp column, plus any pass-through columns.
    """
    job = store.get_historical_features(entity_df=entity_df, features=store.get_feature_service(service))
    return job.to_df()
