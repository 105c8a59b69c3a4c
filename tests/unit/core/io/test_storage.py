"""ObjectStore.list_with_versions: a listing that changes when an object is added, rewritten or removed,
locally and on a real S3-compatible server (moto)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_mlops_provider.core.io.storage import ObjectStore, ObjectVersion, StorageConfig, is_s3_uri, local_path


def test_versions_follow_adds_rewrites_and_deletes(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    assert store.list_with_versions(f"{root}/parts/") == []
    store.write_bytes(f"{root}/parts/a", b"one")
    store.write_bytes(f"{root}/parts/b", b"two!")
    store.write_bytes(f"{root}/other", b"not under the prefix")
    listed = store.list_with_versions(f"{root}/parts/")
    assert [(v.uri, v.size) for v in listed] == [(f"{root}/parts/a", 3), (f"{root}/parts/b", 4)]
    assert [v.uri for v in listed] == store.list(f"{root}/parts/")
    assert store.list_with_versions(f"{root}/parts/") == listed  # unchanged data, unchanged listing

    store.write_bytes(f"{root}/parts/a", b"ONE")  # same size, new content
    if not is_s3_uri(root):
        os.utime(local_path(f"{root}/parts/a"), ns=(1, 1))  # a coarse clock could give the same time
    rewritten = store.list_with_versions(f"{root}/parts/")
    assert rewritten[0].size == 3 and rewritten[0].version != listed[0].version
    assert rewritten[1] == listed[1]

    store.delete(f"{root}/parts/b")
    assert [v.uri for v in store.list_with_versions(f"{root}/parts/")] == [f"{root}/parts/a"]


def test_a_file_uri_lists_that_file(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    store.write_bytes(f"{root}/current.parquet", b"data")
    (version,) = store.list_with_versions(f"{root}/current.parquet")
    assert isinstance(version, ObjectVersion) and (version.uri, version.size) == (f"{root}/current.parquet", 4)
    assert store.list_with_versions(f"{root}/missing.parquet") == []


def test_roots_confine_every_operation_and_resolve_escapes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = ObjectStore(StorageConfig(roots=(str(root), "s3://ml-data/features")))
    store.write_bytes(str(root / "a" / "x.bin"), b"x")
    assert store.read_bytes(str(root / "a" / "x.bin")) == b"x" and store.list(f"{root}/") == [str(root / "a" / "x.bin")]
    for outside in (str(tmp_path / "x.bin"), f"{root}/../x.bin", f"{root}x/x.bin", "s3://ml-data/featuresX/a"):
        for operation in (store.read_bytes, store.exists, store.list, store.delete):
            with pytest.raises(PermissionError, match="is outside the allowed data roots"):
                operation(outside)
        with pytest.raises(PermissionError, match="is outside the allowed data roots"):
            store.write_bytes(outside, b"x")
    assert not (tmp_path / "x.bin").exists()
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(PermissionError):
        ObjectStore(StorageConfig(roots=(str(tmp_path / "link" / "data"),))).read_bytes(str(tmp_path / "y.bin"))


def test_roots_travel_through_the_environment_and_none_means_anywhere(tmp_path: Path) -> None:
    config = StorageConfig(roots=(str(tmp_path), "s3://b/p"))
    assert StorageConfig.from_env(config.to_env()) == config
    assert StorageConfig.from_env({}).roots is None
    ObjectStore(StorageConfig()).write_bytes(str(tmp_path / "free.bin"), b"x")


@pytest.mark.parametrize("endpoint", ["minio:9000", "ftp://minio:9000", "http://", "http://minio :9000"])
def test_an_endpoint_that_is_not_an_http_url_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="is not an http\\(s\\) URL such as http://minio:9000"):
        StorageConfig(endpoint_url=endpoint)


def test_an_endpoint_message_never_shows_user_info() -> None:
    with pytest.raises(ValueError) as refused:
        StorageConfig(endpoint_url="ftp://user:hunter2@minio:9000")
    assert "hunter2" not in str(refused.value)
