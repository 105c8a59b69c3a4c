"""ObjectStore.list_with_versions: a listing that changes when an object is added, rewritten or removed,
locally and on a real S3-compatible server (moto)."""

from __future__ import annotations

import os

from airflow_mlops_provider.core.io.storage import ObjectStore, ObjectVersion, is_s3_uri, local_path


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
