"""Opening a feature store: a Redis online store's client gets bounded timeouts."""

from __future__ import annotations

from pathlib import Path

from airflow_mlops_provider.core.features.feast_repo import bounded_redis, online_store_address, open_store

REDIS_CONFIG = """
project: churn
provider: local
registry: {registry}
online_store:
  type: redis
  connection_string: "{connection}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def test_timeouts_and_no_client_retry_are_added_unless_given() -> None:
    bounded = bounded_redis("redis:6379,password=secret,db=1")
    assert bounded == "redis:6379,password=secret,db=1,socket_connect_timeout=5,socket_timeout=10,retry=null"
    assert (
        bounded_redis("redis:6379,socket_timeout=2,retry_on_timeout=true")
        == "redis:6379,socket_timeout=2,retry_on_timeout=true,socket_connect_timeout=5,retry=null"
    )
    assert bounded_redis("redis:6379,retry=null") == "redis:6379,retry=null,socket_connect_timeout=5,socket_timeout=10"


def test_the_redis_client_feast_builds_has_the_timeouts_and_does_not_retry(tmp_path: Path) -> None:
    config = REDIS_CONFIG.format(registry=tmp_path / "registry.db", connection="127.0.0.1:6390,db=1")
    store = open_store(str(tmp_path), config)
    client = store._get_provider().online_store._get_client(store.config.online_store)
    connection = client.connection_pool.make_connection()
    assert (connection.socket_connect_timeout, connection.socket_timeout) == (5, 10)
    assert connection.retry.get_retries() == 0


def test_a_redis_store_opens_bounded_and_is_named_without_secrets(tmp_path: Path) -> None:
    config = REDIS_CONFIG.format(registry=tmp_path / "registry.db", connection="10.1.2.3:6380,password=hunter2,db=1")
    store = open_store(str(tmp_path), config)
    connection = store.config.online_store.connection_string
    assert connection.endswith(",socket_connect_timeout=5,socket_timeout=10,retry=null")
    assert online_store_address(store) == "redis at 10.1.2.3:6380"
