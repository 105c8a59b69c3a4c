"""No secret of a connection leaks: the live prod stack's story (and whatever ran on it before) is scanned for
every secret value, raw, URL-encoded, JSON-escaped and base64-encoded (at any alignment), in

- every file the stack wrote: task logs, component logs, OpenLineage events (the file transport), the demo's
  output; only ``stack.json`` and the admin's passwords file hold secrets, by design (owner-only files), and the
  S3 server's access log the S3 key id (of each signed request);
- every XCom entry and the rendered templated fields of every task instance, through the REST API;
- every MLflow run (params, tags, inputs), logged model, registered model and model version;
- every S3 object: Data Docs, drift reports and summaries, training sets, MLflow's artifacts.

The secrets: the Redis ACL user's password (broker and Feast online store), the MLflow connection's bearer token
(``tests/fixtures/live_prod.py`` chooses both), the S3 key pair, the admin's password and Airflow's Fernet, API and
JWT keys. Training pods do not run on this profile: the pods of the example DAGs are rendered here, as a worker
renders them, with the same kind of distinctive secrets in token and in basic-auth connections.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import psutil
import pytest

from airflow_mlops_provider.core.io.storage import ObjectStore
from demo.services import Services
from tests.e2e.story import DEMO_TIMEOUT, LiveDemo
from tests.paths import DAGS

#: Files that hold the stack's secrets by design, readable by their owner only.
SECRET_FILES = ("stack.json", "simple_auth_manager_passwords.json")
#: What a file may hold by its nature: the S3 server's access log names the key id of each signed request (as
#: every S3 server, and CloudTrail, does: a key id identifies, the secret key signs and never travels).
SERVER_OWN = {"s3/moto.log": ["s3 access key (raw)"]}
#: Airflow's own keys, read from a component's environment.
AIRFLOW_KEYS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")
PAGE = 100

#: A test of the live stack may be the one that starts it.
LIVE_TIMEOUT = DEMO_TIMEOUT + 900


class Scanner:
    """Finds secrets in bytes, in each form a log line, a URL, a JSON document or a header would carry them.

    :param named: the secret values by name (each long enough not to occur by chance).
    """

    def __init__(self, named: dict[str, str]) -> None:
        self.forms = {(name, form): pattern for name, value in named.items() for form, pattern in forms(value).items()}
        short = [key for key, pattern in self.forms.items() if len(pattern) < 12]
        assert not short, f"too short to scan for without false alarms: {short}"

    def find(self, blob: bytes) -> list[str]:
        """``name (form)`` of each secret form in ``blob``.

        :param blob: the bytes to scan.
        """
        return [f"{name} ({form})" for (name, form), pattern in self.forms.items() if pattern in blob]


def forms(secret: str) -> dict[str, bytes]:
    """The distinct forms of a secret: raw bytes, URL-encoded (both ways, both hex cases), JSON-escaped, and
    base64 and base64url at each of the three alignments it can have inside a longer encoded string (the part
    that does not depend on its neighbours).

    :param secret: the value.
    """
    raw = secret.encode()
    found = {
        "raw": raw,
        "url": quote(secret, safe="").encode(),
        "url-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")).encode(),
        "form": quote_plus(secret, safe="").encode(),
        "json": json.dumps(secret)[1:-1].encode(),
    }
    for offset in range(3):
        end = (offset + len(raw)) // 3 * 4
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            found[f"{name}@{offset}"] = encode(b"\0" * offset + raw)[4 if offset else 0 : end]
    distinct: dict[bytes, str] = {}
    for form, pattern in found.items():
        distinct.setdefault(pattern, form)
    return {form: pattern for pattern, form in distinct.items()}


def test_the_scanner_finds_each_form_anywhere() -> None:
    secret = f"s3cr3t+/{secrets.token_urlsafe(16)}"
    scanner = Scanner({"it": secret})
    for prefix in (b"", b"a", b"ab", b"abc"):
        assert scanner.find(b"log: " + prefix + secret.encode() + b" end") == ["it (raw)"]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            assert scanner.find(b"Basic " + encode(prefix + b"user:" + secret.encode()) + b"==")
    assert scanner.find(f"redis://u:{quote(secret, safe='')}@h".encode()) == ["it (url)"]
    assert scanner.find(b"nothing to see " + secret[:-1].encode()) == []


@pytest.fixture(scope="module")
def scanner(live_secrets: dict[str, str], stack: dict[str, Any]) -> Scanner:
    """Every secret of the live stack."""
    named = {
        "redis password": live_secrets["redis_password"],
        "mlflow token": live_secrets["mlflow_token"],
        "s3 access key": stack["s3"]["AWS_ACCESS_KEY_ID"],
        "s3 secret key": stack["s3"]["AWS_SECRET_ACCESS_KEY"],
        "admin password": stack["airflow"]["credentials"][1],
    }
    return Scanner(named | airflow_keys(stack))


def airflow_keys(stack: dict[str, Any]) -> dict[str, str]:
    """Airflow's Fernet, API and JWT keys, from the environment of one of the stack's Airflow processes."""
    for pid in stack["sessions"]:
        with contextlib.suppress(psutil.Error):
            env = psutil.Process(pid).environ()
            if all(key in env for key in AIRFLOW_KEYS):
                return {key: env[key] for key in AIRFLOW_KEYS}
    pytest.fail("no Airflow process of the stack is left to read its keys from")


@pytest.fixture(scope="module")
def rest(stack: dict[str, Any]) -> Iterator[httpx.Client]:
    """The REST API (``/api/v2``) with the admin's token."""
    url = stack["airflow"]["url"]
    username, password = stack["airflow"]["credentials"]
    token = httpx.post(f"{url}/auth/token", json={"username": username, "password": password}, timeout=30)
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=f"{url}/api/v2", headers=headers, timeout=60) as client:
        yield client


def pages(rest: httpx.Client, path: str, key: str) -> list[dict[str, Any]]:
    """Every item of a paginated list endpoint."""
    items: list[dict[str, Any]] = []
    while True:
        response = rest.get(path, params={"limit": PAGE, "offset": len(items)})
        response.raise_for_status()
        page = response.json()[key]
        items += page
        if len(page) < PAGE:
            return items


@pytest.mark.usefixtures("live")
@pytest.mark.e2e
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_redis_clients_log_in_as_the_sessions_user(services: Services, live_secrets: dict[str, str]) -> None:
    clients = services.redis_client(0).client_list()
    assert [c for c in clients if c.get("user") == live_secrets["redis_user"]], "no client of the stack uses the user"


@pytest.mark.e2e
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_no_file_of_the_stack_holds_a_secret(live: tuple[LiveDemo, Path], scanner: Scanner) -> None:
    demo, home = live
    files = [path for path in home.rglob("*") if path.is_file() and path.name not in SECRET_FILES]
    task_logs = [path for path in files if "dag_id=" in str(path)]
    lineage = [path for path in files if "openlineage" in path.parts]
    assert len(task_logs) > 50 and lineage, "the story wrote task logs and lineage events"

    found = {}
    for path in files:
        where = str(path.relative_to(home))
        found[where] = [what for what in scanner.find(path.read_bytes()) if what not in SERVER_OWN.get(where, [])]
    found["the demo's output"] = scanner.find(demo.output.encode())

    assert {where: what for where, what in found.items() if what} == {}


@pytest.mark.e2e
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_no_xcom_or_rendered_field_holds_a_secret(rest: httpx.Client, scanner: Scanner) -> None:
    found: dict[str, list[str]] = {}
    entries = pages(rest, "/dags/~/dagRuns/~/taskInstances/~/xcomEntries", "xcom_entries")
    for entry in entries:
        where = f"{entry['dag_id']}/{entry['run_id']}/{entry['task_id']}[{entry['map_index']}] XCom {entry['key']}"
        path = f"/dags/{entry['dag_id']}/dagRuns/{entry['run_id']}/taskInstances/{entry['task_id']}/xcomEntries"
        response = rest.get(f"{path}/{entry['key']}", params={"map_index": entry["map_index"]})
        response.raise_for_status()
        found[where] = scanner.find(response.content)
    tis = pages(rest, "/dags/~/dagRuns/~/taskInstances", "task_instances")
    for ti in tis:
        where = f"{ti['dag_id']}/{ti['dag_run_id']}/{ti['task_id']}[{ti['map_index']}] task instance"
        found[where] = scanner.find(json.dumps(ti).encode())

    assert len(entries) > 50 and sum(bool(ti.get("rendered_fields")) for ti in tis) > 20, (len(entries), len(tis))
    assert {where: what for where, what in found.items() if what} == {}


def every(page: Callable[[str | None], Any]) -> list[Any]:
    """Every item of a paged MLflow search.

    :param page: fetches the page at a token (``None``: the first); returns a ``PagedList``.
    """
    items: list[Any] = []
    token = None
    while True:
        found = page(token)
        items += found
        token = found.token
        if not token:
            return items


@pytest.mark.e2e
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_no_mlflow_entity_holds_a_secret(stack: dict[str, Any], scanner: Scanner) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=stack["mlflow"]["url"], registry_uri=stack["mlflow"]["url"])
    experiments = [e.experiment_id for e in every(lambda t: client.search_experiments(ViewType.ALL, page_token=t))]
    found: dict[str, list[str]] = {}
    runs = every(lambda t: client.search_runs(experiments, run_view_type=ViewType.ALL, page_token=t))
    for run in runs:
        found[f"run {run.info.run_id}"] = scanner.find(json.dumps(run.to_dictionary(), default=str).encode())
    for model in every(lambda t: client.search_logged_models(experiments, page_token=t)):
        found[f"logged model {model.model_id}"] = scanner.find(json.dumps(model.to_dictionary(), default=str).encode())
    for registered in every(lambda t: client.search_registered_models(page_token=t)):
        found[f"model {registered.name}"] = scanner.find(repr((registered.tags, registered.aliases)).encode())
        versions = every(lambda t, name=registered.name: client.search_model_versions(f"name = '{name}'", page_token=t))
        for version in versions:
            entity = json.dumps(dict(version), default=str)
            found[f"model {registered.name} version {version.version}"] = scanner.find(entity.encode())

    assert len(runs) >= 2 and any(key.startswith("model ") for key in found), found.keys()
    assert {where: what for where, what in found.items() if what} == {}


@pytest.mark.e2e
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_no_stored_object_holds_a_secret(stack: dict[str, Any], store: ObjectStore, scanner: Scanner) -> None:
    data, artifacts = stack["s3"]["bucket"], stack["s3"]["artifacts_bucket"]
    keys = [*store.list(f"s3://{data}/"), *store.list(f"s3://{artifacts}/")]
    reports = [key for key in keys if key.endswith(".html")]
    assert any("/validation/" in key for key in reports) and any("/drift_reports/" in key for key in reports), keys

    found = {key: scanner.find(store.read_bytes(key)) for key in keys}

    assert {key: what for key, what in found.items() if what} == {}


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_no_training_pod_spec_holds_a_secret(monkeypatch: pytest.MonkeyPatch, auth: str) -> None:
    from airflow.dag_processing.dagbag import BundleDagBag
    from kubernetes.client import ApiClient

    from airflow_mlops_provider.operators.training import GPUTrainingOperator

    named = {name: f"{name}+/{secrets.token_urlsafe(16)}" for name in ("mlflow", "key-id", "secret-key")}
    credentials = (
        {"extra": {"token": named["mlflow"]}} if auth == "token" else {"login": "ml", "password": named["mlflow"]}
    )
    monkeypatch.setenv("AIRFLOW__MLOPS__TRAINING_BACKEND", "kubernetes")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": "http://mlflow:5000", **credentials})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_S3_DEFAULT",
        json.dumps({"conn_type": "mlops_s3", "login": named["key-id"], "password": named["secret-key"]}),
    )
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    tasks = [t for dag in bag.dags.values() for t in dag.tasks if isinstance(t, GPUTrainingOperator)]
    assert tasks and not bag.import_errors

    found = {}
    for task in tasks:
        task.dataset_uri = "s3://ml-data/training_sets/churn.parquet"  # an XCom in the DAG
        task.hyperparameters = {key: "1" for key in task.hyperparameters}  # Jinja in the DAG
        task.prepare_pod("0123456789abcdef")
        pod = ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))
        found[f"{task.dag_id}.{task.task_id}"] = Scanner(named).find(json.dumps(pod).encode())

    assert found and {where: what for where, what in found.items() if what} == {}
