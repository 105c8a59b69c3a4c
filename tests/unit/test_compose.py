"""``docker-compose.yaml`` against the Compose specification, and against the prod profile of the demo.

The prod profile (``demo/prod.py``) runs the compose topology as processes on one machine. Rendered for one
profile run, each Airflow service's environment must be the environment the profile gives the same component,
key for key, but for what only differs between containers and processes: addresses (``service:port``, and
where a component listens), secrets and settings (``.env`` interpolations) and the two container locations.

The Compose specification's schema is vendored as ``tests/fixtures/compose-spec.json``: ``schema/compose-spec.json``
of https://github.com/compose-spec/compose-spec (commit 00655e2222608fa6eaecdf12ac5195889ca2244a), Apache-2.0.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

from demo.prod import WORKERS, ProdSettings
from demo.services import Services
from tests.paths import DAGS, REPO

COMPOSE = REPO / "docker-compose.yaml"
SCHEMA = REPO / "tests" / "fixtures" / "compose-spec.json"
#: The container locations of ``AIRFLOW_HOME`` and of the DAGs folder.
CONTAINER_HOME, CONTAINER_DAGS = "/opt/airflow", "/opt/airflow/dags"
#: Where a component listens: in its container on all interfaces and Airflow's default ports, in the profile on
#: loopback and ports free on the machine. Each such key, with its value in the compose file.
LISTEN = {
    "AIRFLOW__API__HOST": "0.0.0.0",
    "AIRFLOW__API__PORT": "8080",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "8974",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8793",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "8794",
}
#: Each compose service whose environment the profile defines, with the profile component it stands for:
#: ``None`` for the common Airflow environment (``airflow db migrate``; flower, which the profile does not run).
COMPONENTS: list[tuple[str, str | None]] = [
    ("airflow-init", None),
    ("airflow-api-server", "airflow api-server"),
    ("airflow-scheduler", "airflow scheduler"),
    ("airflow-dag-processor", "airflow dag-processor"),
    ("airflow-triggerer", "airflow triggerer"),
    *(("airflow-worker", f"airflow celery {worker}") for worker in WORKERS),
    ("flower", None),
    ("mlflow", "mlflow server"),
]
INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker compose reads it (anchors and merge keys resolved), before interpolation."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> ProdSettings:
    """One prod-profile run's settings, with made-up database names (no service is contacted)."""
    return ProdSettings(
        tmp_path_factory.mktemp("prod"),
        DAGS,
        Services.from_env(),
        databases={"airflow": "a", "mlflow": "m", "feast": "f"},
        redis_dbs={"broker": 1, "online": 2},
    )


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of ``${VAR}``, ``${VAR:?message}``, ``${VAR:-default}`` and ``$$``.

    An unknown variable fails (``:-`` takes its default). ``:?`` accepts an empty value: the profile's
    PostgreSQL and Redis take no password.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group() == "$$":
            return "$"
        name, op = match["name"], match["op"]
        if op == ":-":
            return variables.get(name) or match["arg"]
        if name not in variables:
            raise KeyError(f"the prod profile has no value for ${{{name}}}")
        return variables[name]

    return INTERPOLATION.sub(substitute, value)


def render(value: str, settings: ProdSettings) -> str:
    """A compose value as the profile run would have it: its addresses, its locations, its variables."""
    for service, address in settings.addresses().items():
        value = re.sub(rf"(?<![\w.-]){re.escape(service)}(?!\d)", address, value)
    locations = {CONTAINER_DAGS: str(settings.dags_folder), CONTAINER_HOME: str(settings.airflow_home)}
    value = re.sub(r"/opt/airflow(?:/dags)?(?![\w.-])", lambda match: locations[match.group()], value)
    return interpolate(value, settings.variables())


def parsed(value: str) -> Any:
    """A JSON object (a connection) parsed, with the Feast config inside parsed too; any other value as is."""
    if not value.startswith("{"):
        return value
    obj = json.loads(value)
    extra = obj.get("extra", {})
    if "feature_store_yaml" in extra:
        extra["feature_store_yaml"] = yaml.safe_load(extra["feature_store_yaml"])
    return obj


def profile_env(settings: ProdSettings, component: str | None) -> dict[str, str]:
    """The environment the profile gives a component."""
    if component is None:
        return settings.airflow_env()
    if component == "mlflow server":
        return settings.mlflow_env()
    return settings.airflow_commands()[component][1]


def container_only(service: str, settings: ProdSettings) -> dict[str, str]:
    """What a container needs beyond the profile's environment.

    The api-server's command writes the passwords file from the admin's login (the profile writes it in
    ``write_passwords_file``); dumb-init, the image's entrypoint, must signal the Celery worker alone.
    """
    var = settings.variables()
    return {
        "airflow-api-server": {key: var[key] for key in ("AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_PASSWORD")},
        "airflow-worker": {"DUMB_INIT_SETSID": "0"},
    }.get(service, {})


def differences(
    compose: dict[str, Any], service: str, component: str | None, settings: ProdSettings
) -> dict[str, tuple[Any, Any]]:
    """Each key whose compose value, rendered for the profile run, is not the profile's: (compose, profile)."""
    env = compose["services"][service]["environment"]
    assert all(isinstance(value, str) for value in env.values()), "quote every value: YAML would retype it"
    expected = profile_env(settings, component) | container_only(service, settings)
    rendered = {
        key: expected.get(key, value) if LISTEN.get(key) == value else render(value, settings)
        for key, value in env.items()
    }
    return {
        key: (parsed(rendered[key]) if key in rendered else None, parsed(expected[key]) if key in expected else None)
        for key in sorted(rendered.keys() | expected.keys())
        if key not in rendered or key not in expected or parsed(rendered[key]) != parsed(expected[key])
    }


@pytest.mark.parametrize(("service", "component"), COMPONENTS)
def test_service_env_is_the_prod_profile_env(
    compose: dict[str, Any], settings: ProdSettings, service: str, component: str | None
) -> None:
    assert differences(compose, service, component, settings) == {}


def test_every_airflow_service_is_compared(compose: dict[str, Any]) -> None:
    image = compose["x-airflow-common"]["image"]
    airflow_services = {name for name, spec in compose["services"].items() if spec.get("image") == image}
    assert airflow_services == {service for service, _ in COMPONENTS} - {"mlflow"}


def test_worker_replicas_match_the_profile_workers(compose: dict[str, Any]) -> None:
    assert compose["services"]["airflow-worker"]["deploy"]["replicas"] == len(WORKERS)


def _sub(old: str, new: str) -> Callable[[str | None], str]:
    """An edit of part of a value."""

    def edit(value: str | None) -> str:
        assert value is not None and old in value
        return value.replace(old, new)

    return edit


@pytest.mark.parametrize(
    ("service", "component", "key", "edit"),
    [
        pytest.param(
            "airflow-scheduler", "airflow scheduler", "AIRFLOW__CORE__EXECUTOR", lambda _: "LocalExecutor", id="value"
        ),
        pytest.param("airflow-init", None, "AIRFLOW__API__WORKERS", lambda _: None, id="missing-key"),
        pytest.param("flower", None, "AIRFLOW__CORE__PARALLELISM", lambda _: "8", id="extra-key"),
        pytest.param(
            "airflow-worker", "airflow celery worker1", "DUMB_INIT_SETSID", lambda _: "1", id="container-only"
        ),
        pytest.param(
            "airflow-triggerer",
            "airflow triggerer",
            "AIRFLOW__CELERY__BROKER_URL",
            _sub("${REDIS_BROKER_DB", "${REDIS_ONLINE_DB"),
            id="variable",
        ),
        pytest.param(
            "airflow-api-server",
            "airflow api-server",
            "AWS_ENDPOINT_URL",
            _sub("minio:9000", "mlflow:5000"),
            id="address",
        ),
        pytest.param(
            "airflow-dag-processor",
            "airflow dag-processor",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
            lambda _: "8975",
            id="listen-port",
        ),
        pytest.param(
            "airflow-scheduler",
            "airflow scheduler",
            "AIRFLOW_CONN_FEAST_DEFAULT",
            _sub("/opt/airflow/dags/", "/opt/airflow/"),
            id="location",
        ),
        pytest.param(
            "airflow-worker",
            "airflow celery worker2",
            "AIRFLOW_CONN_FEAST_DEFAULT",
            _sub("cache_ttl_seconds: 60", "cache_ttl_seconds: 600"),
            id="feast-config",
        ),
        pytest.param(
            "mlflow",
            "mlflow server",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION",
            lambda _: "true",
            id="mlflow",
        ),
    ],
)
def test_a_drift_is_caught(
    compose: dict[str, Any],
    settings: ProdSettings,
    service: str,
    component: str | None,
    key: str,
    edit: Callable[[str | None], str | None],
) -> None:
    changed = copy.deepcopy(compose)
    env = changed["services"][service]["environment"] = dict(changed["services"][service]["environment"])
    value = edit(env.pop(key, None))
    if value is not None:
        env[key] = value
    assert list(differences(changed, service, component, settings)) == [key]


def test_an_unknown_variable_is_caught(compose: dict[str, Any], settings: ProdSettings) -> None:
    changed = copy.deepcopy(compose)
    env = changed["services"]["airflow-init"]["environment"]
    env["AIRFLOW__CELERY__BROKER_URL"] = _sub("${REDIS_PASSWORD", "${REDIS_PASS")(env["AIRFLOW__CELERY__BROKER_URL"])
    with pytest.raises(KeyError, match="REDIS_PASS}"):
        differences(changed, "airflow-init", None, settings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${REDIS_BROKER_DB}", "1"),
        ("${REDIS_BROKER_DB:?cp docker/.env.example .env}", "1"),
        ("${POSTGRES_PASSWORD:?set it}", ""),
        ("${FLOWER_PORT:-5555}", "5555"),
        ("${POSTGRES_PASSWORD:-fallback}", "fallback"),
        ("$${HOSTNAME} ${REDIS_ONLINE_DB}", "${HOSTNAME} 2"),
    ],
)
def test_interpolation(settings: ProdSettings, value: str, expected: str) -> None:
    assert interpolate(value, settings.variables()) == expected


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(compose))
    assert errors == [], "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda data: data["services"]["redis"].update(healthchek={}), id="unknown-key"),
        pytest.param(
            lambda data: data["services"]["airflow-worker"]["depends_on"]["redis"].update(condition="service_ready"),
            id="bad-condition",
        ),
        pytest.param(lambda data: data["services"]["flower"].update(profiles="flower"), id="profiles-not-a-list"),
    ],
)
def test_the_schema_rejects_an_invalid_file(compose: dict[str, Any], change: Any) -> None:
    changed = copy.deepcopy(compose)
    change(changed)
    assert not jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).is_valid(changed)


def test_the_vendored_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(json.loads(SCHEMA.read_text()))
