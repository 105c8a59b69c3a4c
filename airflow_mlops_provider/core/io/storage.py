"""Airflow-free bytes I/O at a local path, a ``file://`` URI or an ``s3://bucket/key`` URI.

boto3 is imported only when the first ``s3://`` URI is used. Secrets never appear in a repr,
an error message or a log line.
"""

from __future__ import annotations

import builtins
import logging
import mimetypes
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

log = logging.getLogger(__name__)

#: Environment variables written by :meth:`StorageConfig.to_env` that must travel as secrets.
SECRET_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
#: The data roots a process may read and write (comma-separated), for child processes and pods.
ROOTS_ENV = "MLOPS_STORAGE_ROOTS"

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_DENIED_CODES = frozenset(
    {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)
_TMP_PREFIX = ".tmp-"
#: Every S3 call is bounded: a connection must open within CONNECT_TIMEOUT_S, the server must send each
#: response chunk within READ_TIMEOUT_S (a large object keeps flowing), and a call is tried MAX_ATTEMPTS
#: times (boto3's standard retry mode, with a backoff under 2 s between tries). An endpoint that accepts
#: connections and never answers fails a call after about S3_CALL_BOUND_S seconds, naming the endpoint.
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 8
MAX_ATTEMPTS = 2
S3_CALL_BOUND_S = MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S)


@dataclass(frozen=True)
class StorageConfig:
    """Where S3-compatible storage lives and how to authenticate; all ``None`` means boto3's defaults.

    :param endpoint_url: e.g. ``http://127.0.0.1:9000`` for MinIO; ``None`` for AWS.
    :param access_key_id: access key id; ``None`` lets boto3 find credentials itself.
    :param secret_access_key: secret key; never shown in ``repr``.
    :param region_name: e.g. ``us-east-1``.
    :param roots: the local directories and ``s3://`` prefixes every URI must be under; ``None``: anywhere.
    :raises ValueError: ``endpoint_url`` is not an ``http(s)://host[:port]`` URL.
    """

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    region_name: str | None = None
    roots: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or any(c.isspace() for c in self.endpoint_url)
            ):
                raise ValueError(
                    f"S3 endpoint_url {self.endpoint_display!r} is not an http(s) URL such as http://minio:9000"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """Read the config from ``AWS_*`` variables (endpoint also from ``MLFLOW_S3_ENDPOINT_URL``).

        :param environ: the environment to read; ``os.environ`` by default.
        """
        env = os.environ if environ is None else environ
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL") or env.get("MLFLOW_S3_ENDPOINT_URL") or None,
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            region_name=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            roots=tuple(root for root in env.get(ROOTS_ENV, "").split(",") if root) or None,
        )

    def to_env(self) -> dict[str, str]:
        """Return the environment that :meth:`from_env` reads back into this config (unset fields omitted)."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region_name,
            ROOTS_ENV: ",".join(self.roots) if self.roots else None,
        }
        return {key: value for key, value in env.items() if value}

    @property
    def endpoint_display(self) -> str:
        """The endpoint for messages, with any user info stripped; ``"AWS S3"`` when unset."""
        if not self.endpoint_url:
            return "AWS S3"
        parts = urlsplit(self.endpoint_url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def check_allowed(self, uri: str) -> None:
        """Refuse ``uri`` when it is outside :attr:`roots` (``..`` and symlinks resolved for local paths).

        :param uri: a local path, ``file://`` or ``s3://`` URI about to be read, written, listed or deleted.
        :raises PermissionError: naming the URI and the roots.
        """
        if self.roots is None or any(_within(uri, root) for root in self.roots):
            return
        raise PermissionError(
            f"{uri} is outside the allowed data roots {list(self.roots)}: add its location to [mlops] allowed_roots"
        )


class ObjectVersion(NamedTuple):
    """An object and what changes when its content does.

    :param uri: the object.
    :param size: its size in bytes.
    :param version: its ETag on S3, its modification time (ns) on local disk.
    """

    uri: str
    size: int
    version: str


def is_s3_uri(uri: str) -> bool:
    """Tell whether ``uri`` is an ``s3://`` URI.

    :param uri: a local path or URI.
    """
    return uri.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; the key may be empty.

    :param uri: an ``s3://`` URI.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


def local_path(uri: str) -> Path:
    """Turn a local path or ``file://`` URI into a :class:`~pathlib.Path`.

    :param uri: a local path or ``file://`` URI.
    """
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file:// URI with a remote host is not supported: {uri!r}")
        return Path(unquote(parts.path))
    if "://" in uri:
        raise ValueError(f"unsupported URI scheme (use a local path, file:// or s3://): {uri!r}")
    return Path(uri)


class ObjectStore:
    """Read, write, list and delete objects at local paths or ``s3://`` URIs.

    :param config: S3 settings; ``None`` reads them from the environment on first ``s3://`` use.
    """

    def __init__(self, config: StorageConfig | None = None) -> None:
        self._config = config
        self._client: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(config={self._config!r})"

    @property
    def config(self) -> StorageConfig:
        """The S3 settings in use."""
        if self._config is None:
            self._config = StorageConfig.from_env()
        return self._config

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created on first use with the bounds of :data:`S3_CALL_BOUND_S`."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            cfg = self.config
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=cfg.endpoint_url,
                aws_access_key_id=cfg.access_key_id,
                aws_secret_access_key=cfg.secret_access_key,
                region_name=cfg.region_name,
                config=Config(
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                    s3={"addressing_style": "path"} if cfg.endpoint_url else None,
                ),
            )
        return self._client

    def read_bytes(self, uri: str) -> bytes:
        """Return the whole object at ``uri``.

        :param uri: a local path, ``file://`` or ``s3://`` URI.
        """
        log.debug("Reading %s", uri)
        self.config.check_allowed(uri)
        if not is_s3_uri(uri):
            try:
                return local_path(uri).read_bytes()
            except FileNotFoundError as err:
                raise FileNotFoundError(f"no such object: {uri}") from err
        bucket, key = split_s3_uri(uri)
        with self._s3_errors(uri):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to ``uri``, replacing it; local writes create parents and are atomic.

        :param uri: a local path, ``file://`` or ``s3://`` URI.
        :param data: the object's content.
        """
        log.debug("Writing %d bytes to %s", len(data), uri)
        self.config.check_allowed(uri)
        if not is_s3_uri(uri):
            _atomic_write(local_path(uri), data)
            return
        bucket, key = split_s3_uri(uri)
        # The type browsers need to show an HTML report instead of downloading it.
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        with self._s3_errors(uri):
            self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def exists(self, uri: str) -> bool:
        """Tell whether an object (a file, not a directory) exists at ``uri``.

        :param uri: a local path, ``file://`` or ``s3://`` URI.
        """
        self.config.check_allowed(uri)
        if not is_s3_uri(uri):
            return local_path(uri).is_file()
        bucket, key = split_s3_uri(uri)
        try:
            with self._s3_errors(uri):
                self.client.head_object(Bucket=bucket, Key=key)
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix_uri: str) -> list[str]:
        """Return the sorted URIs of all objects whose URI starts with ``prefix_uri``.

        Local results keep the form of the prefix (plain path or ``file://`` URI).

        :param prefix_uri: e.g. ``s3://bucket/batches/`` or ``/data/batches/``.
        """
        self.config.check_allowed(prefix_uri)
        if not is_s3_uri(prefix_uri):
            return _list_local(prefix_uri)
        return [version.uri for version in self.list_with_versions(prefix_uri)]

    def list_with_versions(self, prefix_uri: str) -> builtins.list[ObjectVersion]:
        """Like :meth:`list`, with each object's size and version: a cheap fingerprint of the data under
        ``prefix_uri`` (a file URI lists that file), that changes when an object is added, removed or
        rewritten.

        :param prefix_uri: e.g. ``s3://bucket/batches/``, ``/data/batches/`` or ``/data/batch.parquet``.
        """
        self.config.check_allowed(prefix_uri)
        if not is_s3_uri(prefix_uri):
            return [version for uri in _list_local(prefix_uri) if (version := _local_version(uri)) is not None]
        bucket, prefix = split_s3_uri(prefix_uri)
        versions: builtins.list[ObjectVersion] = []
        with self._s3_errors(prefix_uri):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                versions.extend(
                    ObjectVersion(f"s3://{bucket}/{obj['Key']}", int(obj["Size"]), str(obj["ETag"]))
                    for obj in page.get("Contents", [])
                )
        return sorted(versions)

    def delete(self, uri: str, *, missing_ok: bool = False) -> None:
        """Delete the object at ``uri``.

        :param uri: a local path, ``file://`` or ``s3://`` URI.
        :param missing_ok: if false, a missing object raises :class:`FileNotFoundError`.
        """
        log.debug("Deleting %s", uri)
        self.config.check_allowed(uri)
        if not is_s3_uri(uri):
            try:
                local_path(uri).unlink()
            except FileNotFoundError as err:
                if not missing_ok:
                    raise FileNotFoundError(f"no such object: {uri}") from err
            return
        if not missing_ok and not self.exists(uri):
            raise FileNotFoundError(f"no such object: {uri}")
        bucket, key = split_s3_uri(uri)
        with self._s3_errors(uri):
            self.client.delete_object(Bucket=bucket, Key=key)

    def list_buckets(self) -> builtins.list[str]:
        """Return the names of the buckets the credentials can see (a cheap connectivity check)."""
        with self._s3_errors("s3://"):
            return sorted(bucket["Name"] for bucket in self.client.list_buckets().get("Buckets", []))

    @contextmanager
    def _s3_errors(self, uri: str) -> Iterator[None]:
        """Map botocore errors to builtin ones whose messages name the URI or endpoint, never a secret."""
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        endpoint = self.config.endpoint_display
        try:
            yield
        except (ReadTimeoutError, ConnectTimeoutError) as err:
            raise ConnectionError(
                f"S3 endpoint {endpoint} did not answer (for {uri}): {MAX_ATTEMPTS} tries, timeouts "
                f"{CONNECT_TIMEOUT_S} s to connect and {READ_TIMEOUT_S} s to read"
            ) from err
        except (BotoConnectionError, HTTPClientError) as err:
            raise ConnectionError(f"cannot reach S3 endpoint {endpoint} (for {uri})") from err
        except (NoCredentialsError, PartialCredentialsError) as err:
            raise PermissionError(f"no usable S3 credentials for {endpoint} (for {uri})") from err
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES:
                what = "no such bucket" if code == "NoSuchBucket" else "no such object"
                raise FileNotFoundError(f"{what}: {uri}") from err
            if code in _DENIED_CODES:
                raise PermissionError(f"access denied ({code}) at {endpoint} for {uri}") from err
            raise


def _within(uri: str, root: str) -> bool:
    """Tell whether ``uri`` is ``root`` or under it: both ``s3://``, or both local."""
    if is_s3_uri(root) or is_s3_uri(uri):
        base = root.rstrip("/")
        return is_s3_uri(root) and is_s3_uri(uri) and (uri.rstrip("/") == base or uri.startswith(f"{base}/"))
    path, base_path = local_path(uri).resolve(), local_path(root).resolve()
    return path == base_path or base_path in path.parents


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _local_version(uri: str) -> ObjectVersion | None:
    """The size and modification time of a listed local file; ``None`` if it is gone since."""
    try:
        stat = local_path(uri).stat()
    except FileNotFoundError:
        return None
    return ObjectVersion(uri, stat.st_size, str(stat.st_mtime_ns))


def _list_local(prefix_uri: str) -> list[str]:
    """List files whose path starts with ``prefix_uri``, like an S3 prefix listing."""
    prefix = local_path(prefix_uri)
    as_uri = prefix_uri.startswith("file://")
    if prefix_uri.endswith("/"):
        base, name_prefix = prefix, ""
    else:
        base, name_prefix = prefix.parent, prefix.name
    if not base.is_dir():
        return []
    found = []
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if path.is_file() and rel.as_posix().startswith(name_prefix) and not path.name.startswith(_TMP_PREFIX):
            found.append(path.absolute().as_uri() if as_uri else str(base / rel))
    return sorted(found)
