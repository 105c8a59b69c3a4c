"""Where an object lands when moved to another folder, and URLs a browser can open for stored objects."""

from __future__ import annotations

from urllib.parse import quote

from airflow_mlops_provider.core.io.storage import StorageConfig, is_s3_uri, local_path, split_s3_uri


def moved_uri(uri: str, prefix: str) -> str:
    """Where ``uri`` lands when moved under ``prefix``: its file name there.

    :param uri: the object, a local path or URI.
    :param prefix: the target "folder", a local path or URI (with or without a trailing ``/``).
    """
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"{prefix.rstrip('/')}/{name}"


def object_url(uri: str, config: StorageConfig) -> str:
    """Return a browsable URL for a stored object.

    Local paths become ``file://`` URLs; on an S3-compatible endpoint (MinIO, ...) the path-style object
    URL; on AWS the object's page in the S3 console.

    :param uri: a local path, ``file://`` or ``s3://`` URI.
    :param config: the storage settings the object was written with.
    """
    if not is_s3_uri(uri):
        return local_path(uri).absolute().as_uri()
    bucket, key = split_s3_uri(uri)
    if config.endpoint_url:
        return f"{config.endpoint_display.rstrip('/')}/{bucket}/{quote(key)}"
    region = f"region={config.region_name}&" if config.region_name else ""
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?{region}prefix={quote(key, safe='')}"
