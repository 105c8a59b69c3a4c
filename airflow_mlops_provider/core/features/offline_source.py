"""A feature view's offline source as a parquet directory: one part file per batch, named by the batch id.

Writing a batch touches only its own part, so an append costs what the batch costs, whatever the total,
and re-writing a batch replaces its part instead of duplicating its rows. The newest event timestamp is
read from the parts' parquet footers (column statistics), not from their data.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_mlops_provider.core.features.batches import to_utc
from airflow_mlops_provider.core.io.storage import ObjectStore, is_s3_uri, local_path, split_s3_uri

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"


def source_directory(source_uri: str) -> str:
    """Return the directory form (trailing ``/``) of a directory source.

    :param source_uri: the source's path or URI; a single ``.parquet`` file is not a directory source.
    :raises ValueError: for a single-file source, which cannot take one part per batch.
    """
    if source_uri.lower().endswith(PART_SUFFIX):
        raise ValueError(f"offline source {source_uri} is a single file; declare a directory to append parts")
    return source_uri.rstrip("/") + "/"


def part_uri(source_uri: str, batch_id: str) -> str:
    """The URI of a batch's part file in a directory source.

    :param source_uri: the source directory.
    :param batch_id: a file-name-safe batch id.
    """
    return f"{source_directory(source_uri)}{PART_PREFIX}{batch_id}{PART_SUFFIX}"


def write_part(table: pa.Table, uri: str, store: ObjectStore | None = None) -> None:
    """Write ``table`` as the parquet part at ``uri``, replacing it atomically (locally) or as one put (S3).

    :param table: the conformed batch.
    :param uri: the part's URI, from :func:`part_uri`.
    :param store: the store to write through.
    """
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    (store or ObjectStore()).write_bytes(uri, buffer.getvalue())


def parquet_files(source_uri: str, store: ObjectStore | None = None) -> list[str]:
    """The parquet files of a source: the file itself, or the ``.parquet`` files under a directory.

    Hidden and underscore-prefixed files are skipped, as parquet readers do.

    :param source_uri: a file or directory path or URI.
    :param store: the store to list through.
    """
    if source_uri.lower().endswith(PART_SUFFIX):
        return [source_uri]
    directory = source_uri.rstrip("/") + "/"
    return [
        uri
        for uri in (store or ObjectStore()).list(directory)
        if uri.lower().endswith(PART_SUFFIX)
        and not any(part.startswith((".", "_")) for part in uri[len(directory) :].split("/"))
    ]


def max_event_timestamp(source_uri: str, timestamp_field: str, store: ObjectStore | None = None) -> pd.Timestamp | None:
    """The newest event timestamp in a source, from parquet statistics; ``None`` when it has no rows.

    Row groups without statistics are read, for that one column only. Naive timestamps count as UTC.

    :param source_uri: a parquet file, or a directory of parts.
    :param timestamp_field: the event timestamp column.
    :param store: the store to read through.
    """
    store = store or ObjectStore()
    latest = [
        stamp
        for uri in parquet_files(source_uri, store)
        if (stamp := _file_max(uri, timestamp_field, store)) is not None
    ]
    return max(latest) if latest else None


def materialization_window(
    table: pa.Table, timestamp_field: str, source_uri: str, store: ObjectStore | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window to materialize after appending ``table``: from its oldest row to the source's newest.

    Materializing up to the newest data, not just to the batch's end, keeps the online store at the
    latest values even when an older batch is re-ingested after newer ones.

    :param table: the appended batch.
    :param timestamp_field: the event timestamp column.
    :param source_uri: the source directory, which already holds the batch's part.
    :param store: the store to read footers through.
    """
    bounds = pc.min_max(table[timestamp_field]).as_py()
    start, end = to_utc(bounds["min"]), to_utc(bounds["max"])
    latest = max_event_timestamp(source_uri, timestamp_field, store)
    return start, end if latest is None else max(end, latest)


def _file_max(uri: str, column: str, store: ObjectStore) -> pd.Timestamp | None:
    with _open(uri, store) as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except pa.ArrowException as err:
            raise ValueError(f"cannot read the parquet footer of {uri}: {err}") from err
        index = parquet.schema_arrow.get_field_index(column)
        if index < 0:
            raise ValueError(f"{uri} has no column {column!r}")
        values: list[Any] = []
        for group in range(parquet.metadata.num_row_groups):
            meta = parquet.metadata.row_group(group)
            if meta.num_rows == 0:
                continue
            stats = meta.column(index).statistics
            if stats is not None and stats.has_min_max:
                values.append(stats.max)
            else:
                values.append(pc.max(parquet.read_row_group(group, columns=[column])[column]).as_py())
    stamps = [to_utc(value) for value in values if value is not None]
    return max(stamps) if stamps else None


def _open(uri: str, store: ObjectStore) -> Any:
    """A seekable binary handle on ``uri``; on S3, reads are ranged GETs (a footer costs one or two)."""
    if not is_s3_uri(uri):
        return local_path(uri).open("rb")
    return io.BufferedReader(_S3RangeFile(store, uri), buffer_size=1 << 16)


class _S3RangeFile(io.RawIOBase):
    """A read-only, seekable view of one S3 object that fetches only the byte ranges read."""

    def __init__(self, store: ObjectStore, uri: str) -> None:
        super().__init__()
        self._store = store
        self._bucket, self._key = split_s3_uri(uri)
        self._size = int(store.client.head_object(Bucket=self._bucket, Key=self._key)["ContentLength"])
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        end = min(self._position + len(buffer), self._size)
        if end <= self._position:
            return 0
        body = self._store.client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end - 1}"
        )["Body"]
        data = body.read()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
