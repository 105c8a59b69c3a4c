"""The connection forms of the provider's types, as Airflow's API serves them to the UI's "Add connection" form.

``HookMetaService.hook_meta_data`` is what the UI reads (``/ui/connections/hook_meta``): it must carry every
field the hooks declare, or the form silently falls back to the generic one. The browser test
(``tests/e2e/test_ui.py``) checks the rendered form.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

from airflow_mlops_provider.hooks.feast import CONNECTION_TYPE_INFO as FEAST_FORM
from airflow_mlops_provider.hooks.mlflow import CONNECTION_TYPE_INFO as MLFLOW_FORM
from airflow_mlops_provider.hooks.storage import CONNECTION_TYPE_INFO as STORAGE_FORM

#: The standard fields, by their names in the API's ``standard_fields``.
STANDARD = {"host": "host", "schema": "url_schema", "login": "login", "password": "password", "port": "port"}
FORMS = [MLFLOW_FORM, FEAST_FORM, STORAGE_FORM]


@pytest.fixture(scope="module")
def served() -> dict[str, dict[str, Any]]:
    return {str(meta.connection_type): meta.model_dump() for meta in HookMetaService.hook_meta_data()}


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form["connection-type"])
def test_the_ui_gets_the_declared_form(served: dict[str, dict[str, Any]], form: dict[str, Any]) -> None:
    meta = served[form["connection-type"]]
    behaviour = form["ui-field-behaviour"]
    assert meta["hook_name"] == form["hook-name"]
    assert meta["hook_class_name"] == form["hook-class-name"]
    for name, key in STANDARD.items():
        field = meta["standard_fields"][key] or {"hidden": False, "title": None, "placeholder": None}
        assert field["hidden"] == (name in behaviour["hidden-fields"]), name
        assert field["title"] == behaviour.get("relabeling", {}).get(name), name
        assert field["placeholder"] == behaviour.get("placeholders", {}).get(name), name
    assert set(meta["extra_fields"]) == set(form["conn-fields"])
    for name, declared in form["conn-fields"].items():
        assert meta["extra_fields"][name]["schema"] == {**declared["schema"], "title": declared["label"]}


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form["connection-type"])
def test_each_form_documents_its_fields_and_shows_only_what_is_shown(form: dict[str, Any]) -> None:
    behaviour = form["ui-field-behaviour"]
    assert behaviour["hidden-fields"], "each type hides the standard fields it does not use"
    assert set(behaviour["hidden-fields"]) <= set(STANDARD)
    # Airflow 3.3's form shows placeholders of standard fields only, and never of hidden ones.
    assert set(behaviour.get("placeholders", {})) <= set(STANDARD) - set(behaviour["hidden-fields"])
    assert set(behaviour.get("relabeling", {})) <= set(STANDARD) - set(behaviour["hidden-fields"])
    for name, field in form["conn-fields"].items():
        assert field["label"] and field["description"], name
