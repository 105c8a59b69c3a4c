"""In Chromium, as a user would: the Airflow UI of the live prod-profile stack, and the pages its links open.

Debian's ``chromium`` (installed through apt when missing; never ``playwright install``) drives the stack
of the e2e package: log in, trigger ``continuous_training`` from its form with a changed Param, watch the
run succeed, and follow the extra links of its train task (MLflow run), of a quarantined batch's
validation (Data Docs) and of the drift check that found drift (Evidently's report). The connection
forms of the provider's types show their own fields. A screenshot of every step goes to
``tests/e2e/output/ui/``.

The triggered run trains a model of its own name, so the story's registry, runs and Assets are untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect, sync_playwright

from airflow_mlops_provider.hooks.feast import CONNECTION_TYPE_INFO as FEAST_FORM
from airflow_mlops_provider.hooks.mlflow import CONNECTION_TYPE_INFO as MLFLOW_FORM
from airflow_mlops_provider.hooks.storage import CONNECTION_TYPE_INFO as STORAGE_FORM
from demo.api import AirflowApi
from tests.e2e.story import DEMO_TIMEOUT

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
#: No sandbox (root in a container), and none of Chromium's background connections (the network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "output" / "ui"
TRAINING, INGESTION, DRIFT = "continuous_training", "feature_ingestion", "drift_monitor"
#: The Params the test changes in the trigger form: few epochs, and a model apart from the story's.
CHANGED = {"epochs": 3, "model_name": "churn_ui"}
#: The triggered run trains for about 75 s on 2 cores; a slow machine gets more.
RUN_TIMEOUT_MS = 420_000
STANDARD_FIELDS = ("host", "schema", "login", "password", "port")


class Screenshots:
    """Numbered screenshots of the steps, in :data:`SCREENSHOTS` (emptied first)."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.count = 0
        print(f"\nscreenshots: {folder}")

    def __call__(self, page: Page, step: str) -> None:
        """Save the page as ``NN-step.png``."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"  {path.name}")


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed through apt when missing (as root, from Debian's mirrors)."""
    if not CHROMIUM.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode:
                pytest.fail(
                    f"{CHROMIUM} is missing and `{' '.join(command)}` failed ({done.returncode}); the browser test "
                    f"needs Debian's chromium package (apt, as root):\n{(done.stdout + done.stderr)[-3000:]}"
                )
        if not CHROMIUM.exists():
            pytest.fail(f"apt installed chromium, but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="module")
def shots() -> Screenshots:
    return Screenshots(SCREENSHOTS)


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)  # expect() keeps its own 5 s default; the stack trains meanwhile
        yield context
        context.close()


@pytest.fixture(scope="module")
def page(browser: BrowserContext, stack: dict[str, Any], shots: Screenshots) -> Page:
    """A tab logged in to Airflow through SimpleAuthManager's login page."""
    page = browser.new_page()
    page.goto(stack["airflow"]["url"])
    username, password = stack["airflow"]["credentials"]
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    shots(page, "login")
    page.locator("button[type=submit]").click()
    page.locator("[data-testid=nav-dags-link]").wait_for()
    shots(page, "home")
    return page


def airflow_url(stack: dict[str, Any], path: str) -> str:
    """The UI's URL of ``path``."""
    return f"{stack['airflow']['url']}/{path.lstrip('/')}"


def header_state(page: Page) -> Locator:
    """The state badge in the header of a run or task instance page."""
    return page.locator("[data-testid=header-card] [data-testid=state-badge]")


@pytest.fixture(scope="module")
def ui_run(page: Page, stack: dict[str, Any], shots: Screenshots) -> str:
    """The id of a ``continuous_training`` run triggered from the UI's form with :data:`CHANGED` Params.

    Triggered first in the module, so that the other checks run while it trains.
    """
    page.goto(airflow_url(stack, f"dags/{TRAINING}"))
    page.locator("[data-testid=trigger-dag-button]").click()
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.wait_for()
    epochs = dialog.locator(f"[id='{epochs_input_id(dialog)}']")
    expect(epochs).to_have_attribute("aria-valuemax", "500")  # the Param's bounds reach the form
    epochs.fill(str(CHANGED["epochs"]))
    dialog.locator("input[name=element_model_name]").fill(str(CHANGED["model_name"]))
    shots(page, "trigger-form")
    dialog.locator("[data-testid=trigger-dag-submit]").click()
    dialog.wait_for(state="detached")
    page.wait_for_url(re.compile(rf"/dags/{TRAINING}/runs/[^/]+$"))  # the UI opens the new run
    header_state(page).wait_for()
    shots(page, "triggered-run")
    return unquote(page.url.rsplit("/", 1)[-1])


def epochs_input_id(dialog: Locator) -> str:
    """The id of the ``epochs`` number input: the one its increment button controls."""
    control = dialog.locator("[id='number-input:element_epochs:inc']").get_attribute("aria-controls")
    assert control, "the trigger form has no epochs field"
    return control


@pytest.mark.timeout(DEMO_TIMEOUT + 600)  # alone, this module waits for the stack's story first
def test_the_trigger_form_passes_the_changed_params(ui_run: str, api: AirflowApi) -> None:
    run = api.dag_run(TRAINING, ui_run)
    assert run["run_type"] == "manual", run
    assert {name: run["conf"].get(name) for name in CHANGED} == CHANGED, run["conf"]
    assert run["conf"]["window_days"] == 28, "the form sends the other Params' defaults"


def test_connection_forms_show_each_types_own_fields(page: Page, stack: dict[str, Any], shots: Screenshots) -> None:
    page.goto(airflow_url(stack, "connections"))
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.wait_for()
    # The generic type hides nothing: every standard field is there, so "absent" below means hidden.
    select_connection_type(dialog, "Generic")
    for name in STANDARD_FIELDS:
        expect(dialog.locator(f"[name={name}]")).to_have_count(1)
    for form in (MLFLOW_FORM, FEAST_FORM, STORAGE_FORM):
        select_connection_type(dialog, form["hook-name"])
        behaviour = form["ui-field-behaviour"]
        assert behaviour["hidden-fields"], form["connection-type"]
        for name in STANDARD_FIELDS:
            field = dialog.locator(f"[name={name}]")
            expect(field).to_have_count(0 if name in behaviour["hidden-fields"] else 1)
        for name, label in behaviour.get("relabeling", {}).items():
            field_id = dialog.locator(f"[name={name}]").get_attribute("id")
            expect(dialog.locator(f"label[for='{field_id}']")).to_have_text(label)
        for name, placeholder in behaviour.get("placeholders", {}).items():
            expect(dialog.locator(f"[name={name}]")).to_have_attribute("placeholder", placeholder)
        extras = dialog.get_by_role("button", name="Extra Fields", exact=True)
        if extras.get_attribute("aria-expanded") != "true":
            extras.click()
        for name, field in form["conn-fields"].items():
            widget = dialog.locator(f"[name=element_{name}]")
            expect(widget).to_have_count(1)
            if field["schema"].get("format") == "password":
                expect(widget).to_have_attribute("type", "password")
            if field["schema"].get("format") == "multiline":
                expect(dialog.locator(f"textarea[name=element_{name}]")).to_have_count(1)
        shots(page, f"connection-form-{form['connection-type']}")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")


def select_connection_type(dialog: Locator, hook_name: str) -> None:
    """Pick ``hook_name`` in the form's connection type select and wait for its fields."""
    dialog.get_by_role("combobox", name="Connection Type").fill(hook_name)
    dialog.get_by_role("option", name=hook_name, exact=True).click()
    dialog.get_by_role("button", name="Standard Fields").wait_for()


def test_a_quarantined_batch_links_its_data_docs(
    page: Page, browser: BrowserContext, stack: dict[str, Any], api: AirflowApi, shots: Screenshots
) -> None:
    quarantined = [
        ti
        for run in api.dag_runs(INGESTION)
        for ti in api.task_instances(INGESTION, run["dag_run_id"])
        if ti["task_id"] == "ingest_chunk.validate_batches"
        and ti["state"] in ("success", "skipped")
        and (api.xcom(ti) or {}).get("quarantined")
    ]
    assert quarantined, "the story quarantines a batch: a validate_batches instance that quarantined one"
    ti = quarantined[0]
    path = f"dags/{INGESTION}/runs/{ti['dag_run_id']}/tasks/{ti['task_id']}/mapped/{ti['map_index']}/details"
    page.goto(airflow_url(stack, path))
    # Skipped when every batch of its chunk was quarantined, else a success that quarantined some.
    expect(header_state(page)).to_have_text(re.compile("Skipped|Success"))
    docs = follow_link(page, browser, "Data Docs", stack["s3"]["AWS_ENDPOINT_URL"], shots, "quarantined-batch")
    expect(docs).to_have_title("Data documentation compiled by Great Expectations")
    expect(docs.locator(".ge-section").first).to_be_visible()
    shots(docs, "data-docs")
    docs.close()


def test_the_drift_check_links_its_report(
    page: Page, browser: BrowserContext, stack: dict[str, Any], api: AirflowApi, shots: Screenshots
) -> None:
    drifted = [
        ti
        for run in api.dag_runs(DRIFT)
        for ti in api.task_instances(DRIFT, run["dag_run_id"])
        if ti["task_id"] == "check_drift" and ti["state"] == "success" and (api.xcom(ti) or {}).get("dataset_drift")
    ]
    assert drifted, "the story's drift_monitor finds drift"
    ti = drifted[0]
    page.goto(airflow_url(stack, f"dags/{DRIFT}/runs/{ti['dag_run_id']}/tasks/check_drift/details"))
    expect(header_state(page)).to_have_text("Success")
    report = follow_link(page, browser, "Drift report", stack["s3"]["AWS_ENDPOINT_URL"], shots, "drift-check")
    expect(report.locator("[id^=root_metric_]").first).to_be_attached()  # Evidently's rendered report
    report.locator("svg").first.wait_for()
    shots(report, "drift-report")
    report.close()


def follow_link(page: Page, browser: BrowserContext, name: str, url_prefix: str, shots: Screenshots, step: str) -> Page:
    """Click the extra link ``name`` of the open task page; return the tab it opened.

    :param page: a task instance's details page.
    :param browser: where the link's tab opens.
    :param name: the link's name.
    :param url_prefix: where the link must point.
    :param shots: the screenshots.
    :param step: the task page's screenshot name.
    """
    link = page.get_by_role("link", name=name, exact=True)
    link.wait_for()
    shots(page, step)
    href = link.get_attribute("href") or ""
    assert href.startswith(url_prefix), (name, href)
    response = page.request.get(href)  # what the tab will get, said plainly if it is not a page
    assert response.ok, f"{name} link {href}: HTTP {response.status} {response.text()[:500]}"
    assert response.headers.get("content-type", "").startswith("text/html"), (href, response.headers)
    with browser.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state("domcontentloaded")
    assert tab.url == href
    return tab


def test_the_triggered_run_succeeds_and_links_its_mlflow_run(
    ui_run: str, page: Page, browser: BrowserContext, stack: dict[str, Any], api: AirflowApi, shots: Screenshots
) -> None:
    started = datetime.now()
    page.goto(airflow_url(stack, f"dags/{TRAINING}/runs/{ui_run}"))
    # The run page refreshes itself while the run is active: wait for it to show a final state.
    expect(header_state(page)).to_have_text(re.compile("^(Success|Failed)$"), timeout=RUN_TIMEOUT_MS)
    shots(page, "run-finished")
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(TRAINING, ui_run)}
    assert header_state(page).inner_text() == "Success", states
    print(f"  run {ui_run} succeeded, {datetime.now() - started} after the wait began")

    page.locator("[data-testid=table-list]").get_by_role("link", name="train_model", exact=True).click()
    page.wait_for_url(re.compile(r"/tasks/train_model$"))
    page.get_by_role("link", name="Details", exact=True).click()
    (train,) = [ti for ti in api.task_instances(TRAINING, ui_run) if ti["task_id"] == "train_model"]
    mlflow_run_id = api.xcom(train, "mlflow_run_id")
    assert isinstance(mlflow_run_id, str) and mlflow_run_id, train
    mlflow = follow_link(page, browser, "MLflow run", stack["mlflow"]["url"], shots, "train-task")
    assert mlflow.url.endswith(f"/runs/{mlflow_run_id}"), mlflow.url
    expect(mlflow).to_have_title(re.compile(rf"\b{mlflow_run_id}\b"))
    # MLflow names the run after the task instance that created it.
    run_name = re.compile(rf"^{TRAINING}\.train_model\.{re.escape(ui_run)}\.1$")
    expect(mlflow.get_by_role("heading", name=run_name)).to_be_visible()
    expect(mlflow.get_by_text(mlflow_run_id, exact=True).first).to_be_visible()
    shots(mlflow, "mlflow-run")
    mlflow.close()
