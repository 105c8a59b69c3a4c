"""FeastHook: a repo path or an inline feature_store.yaml; Feast imported without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlops_provider.hooks.feast import FeastHook

pytestmark = pytest.mark.integration

INLINE_YAML = """
project: churn
provider: local
registry: ${FEAST_TEST_REGISTRY}
online_store: {type: sqlite, path: data/online_store.db}
offline_store: {type: file}
entity_key_serialization_version: 3
"""


def use_connection(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FEAST_DEFAULT", json.dumps({"conn_type": "feast", "extra": extra}))


def test_a_repo_path_opens_the_repo_store(feast_repo: Path) -> None:
    assert FeastHook().test_connection() == (True, "Feast project 'churn': 2 feature view(s)")


def test_an_inline_config_replaces_the_repo_one(feast_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEAST_TEST_REGISTRY", str(feast_repo / "data" / "registry.db"))
    use_connection(monkeypatch, repo_path=str(feast_repo), feature_store_yaml=INLINE_YAML)
    (feast_repo / "feature_store.yaml").write_text("not: [a valid config")  # must not be read
    store = FeastHook().get_conn()
    assert sorted(view.name for view in store.list_feature_views()) == ["customer_stats", "probe"]
    assert store.config.online_store.path == "data/online_store.db" and store.repo_path == feast_repo


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, r"needs repo_path or feature_store_yaml"),
        ({"feature_store_yaml": "project: churn\nprovider: [local"}, r"invalid inline feature_store\.yaml"),
        ({"feature_store_yaml": "project: churn\nonline_store: {type: nope}"}, r"FeastOnlineStoreInvalidName"),
        ({"repo_path": "/nonexistent/repo"}, r"invalid /nonexistent/repo/feature_store\.yaml: FileNotFoundError"),
    ],
)
def test_bad_settings_fail_clearly(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], message: str) -> None:
    use_connection(monkeypatch, **extra)
    ok, reason = FeastHook().test_connection()
    assert not ok and "ValueError" in reason
    with pytest.raises(ValueError, match=message):
        FeastHook().get_conn()


def test_feast_is_imported_without_torch_which_still_loads_on_use() -> None:
    code = (
        "import sys\n"
        "from airflow_mlops_provider.core.features.feast_repo import import_feast\n"
        "import_feast()\n"
        "before = 'torch' in sys.modules\n"
        "from feast.torch_wrapper import get_torch\n"
        "print(before, get_torch().__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert result.stdout.split() == ["False", "torch"]
