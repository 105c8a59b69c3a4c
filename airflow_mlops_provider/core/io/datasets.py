"""Read and write tabular datasets at a local path or ``s3://`` URI, and hash their content.

A file that lands whole or not at all (a raw batch, a file to profile) is read by :func:`read_batch`,
which refuses a CSV file whose last row was cut short: pandas fills the missing fields of a short row with
nulls, so a truncated file (an interrupted upload or export) would be judged on values nobody wrote.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from typing import Literal

import pandas as pd

from airflow_mlops_provider.core.io.storage import ObjectStore, is_s3_uri, split_s3_uri

Format = Literal["parquet", "csv", "csv.gz"]

_SUFFIXES: tuple[tuple[str, Format], ...] = (
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".csv.gz", "csv.gz"),
    (".csv", "csv"),
)


def dataset_format(uri: str) -> Format:
    """Return the file format of ``uri`` from its suffix.

    :param uri: a local path or URI ending in ``.parquet``, ``.pq``, ``.csv`` or ``.csv.gz``.
    """
    path = split_s3_uri(uri)[1] if is_s3_uri(uri) else uri
    lowered = path.lower()
    for suffix, fmt in _SUFFIXES:
        if lowered.endswith(suffix):
            return fmt
    raise ValueError(f"unsupported dataset format for {uri!r}: use .parquet, .pq, .csv or .csv.gz")


def is_dataset_file(uri: str) -> bool:
    """Tell whether ``uri`` names a file a dataset can be read from: parquet or CSV.

    :param uri: a path or URI.
    """
    try:
        dataset_format(uri)
    except ValueError:
        return False
    return True


def dataset_files(uri: str, store: ObjectStore | None = None) -> list[str]:
    """The files a dataset URI names: itself, or every parquet/CSV file under a ``/``-terminated prefix.

    :param uri: a file, or a directory or ``s3://`` prefix ending in ``/``.
    :param store: the store to list through.
    :raises FileNotFoundError: a prefix without parquet or CSV files.
    """
    if not uri.endswith("/"):
        return [uri]
    files = dataset_files_under(uri, store)
    if not files:
        raise FileNotFoundError(f"no parquet or CSV files under {uri}")
    return files


def dataset_files_under(prefix: str, store: ObjectStore | None = None) -> list[str]:
    """The parquet and CSV files under ``prefix``, in name order; none is an empty list.

    :param prefix: a directory or ``s3://`` prefix, e.g. a landing zone ending in ``/``.
    :param store: the store to list through.
    """
    return [name for name in (store or ObjectStore()).list(prefix) if is_dataset_file(name)]


def read_datasets(uri: str, store: ObjectStore | None = None) -> pd.DataFrame:
    """Read a dataset file, or the rows of every file under a ``/``-terminated prefix, in name order.

    :param uri: see :func:`dataset_files`.
    :param store: the store to read through.
    """
    store = store or ObjectStore()
    frames = [read_dataset(name, store=store) for name in dataset_files(uri, store)]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_dataset(uri: str, store: ObjectStore | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet or CSV dataset.

    :param uri: a local path, ``file://`` or ``s3://`` URI.
    :param store: the store to read through; a default :class:`ObjectStore` if ``None``.
    :param columns: read only these columns, in this order.
    :raises FileNotFoundError: if nothing exists at ``uri``.
    :raises ValueError: if the suffix is unsupported or the content cannot be parsed.
    """
    fmt = dataset_format(uri)
    return _parse(uri, fmt, (store or ObjectStore()).read_bytes(uri), columns)


def read_batch(uri: str, store: ObjectStore | None = None) -> pd.DataFrame:
    """Read a dataset as :func:`read_dataset` does, refusing a CSV file whose last row has fewer fields than
    its header (see :func:`truncated_csv_row`).

    :param uri: a local path, ``file://`` or ``s3://`` URI.
    :param store: the store to read through; a default :class:`ObjectStore` if ``None``.
    :raises FileNotFoundError: if nothing exists at ``uri``.
    :raises ValueError: if the suffix is unsupported, the content cannot be parsed, or a CSV file is truncated.
    """
    fmt = dataset_format(uri)
    data = (store or ObjectStore()).read_bytes(uri)
    frame = _parse(uri, fmt, data)
    if fmt != "parquet":
        cut = truncated_csv_row(gzip.decompress(data) if fmt == "csv.gz" else data)
        if cut is not None:
            raise ValueError(f"{uri} looks truncated: {cut}; re-export or re-upload the whole file")
    return frame


def truncated_csv_row(data: bytes) -> str | None:
    """Describe the last row of CSV ``data`` if it has fewer fields than the header; ``None`` if it is whole.

    A last line that continues a quoted multi-line field (an odd number of quotes) is not judged: pandas
    already refuses a file cut inside quotes.

    :param data: the file's bytes (uncompressed).
    """
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    header_end, last_start = data.find(b"\n", 0, end), data.rfind(b"\n", 0, end) + 1
    last_line = data[last_start:end]
    if header_end < 0 or last_line.count(b'"') % 2:
        return None
    header, last = _fields(data[:header_end]), _fields(last_line)
    if len(last) >= len(header):
        return None
    shown = last_line[:80].decode("utf-8", "replace")
    ended = end < len(data)
    ending = "" if ended else ", and the file does not end with a newline"
    return f"its last row has {len(last)} of the header's {len(header)} fields ({shown!r}){ending}"


def _fields(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", "replace").rstrip("\r")]), [])


def _parse(uri: str, fmt: Format, data: bytes, columns: list[str] | None = None) -> pd.DataFrame:
    """The frame in a dataset file's bytes; ``uri`` names it in errors."""
    try:
        if fmt == "parquet":
            df = pd.read_parquet(io.BytesIO(data), columns=columns)
        else:
            compression = "gzip" if fmt == "csv.gz" else None
            df = pd.read_csv(io.BytesIO(data), usecols=columns, compression=compression)
    except Exception as err:
        raise ValueError(f"cannot read dataset {uri}: {type(err).__name__}: {err}") from err
    return df[columns] if columns is not None else df


def write_dataset(df: pd.DataFrame, uri: str, store: ObjectStore | None = None) -> str:
    """Write ``df`` (without its index) as parquet or CSV, chosen by the suffix of ``uri``.

    For parquet the returned digest equals ``dataset_digest(read_dataset(uri))``; CSV does not keep dtypes.

    :param df: the frame to write.
    :param uri: a local path, ``file://`` or ``s3://`` URI.
    :param store: the store to write through; a default :class:`ObjectStore` if ``None``.
    :return: ``dataset_digest(df)``.
    """
    fmt = dataset_format(uri)
    buffer = io.BytesIO()
    if fmt == "parquet":
        df.to_parquet(buffer, index=False)
    else:
        df.to_csv(buffer, index=False, compression="gzip" if fmt == "csv.gz" else None)
    (store or ObjectStore()).write_bytes(uri, buffer.getvalue())
    return dataset_digest(df)


def dataset_digest(df: pd.DataFrame) -> str:
    """Return a 16-hex-char content hash, stable across processes, that ignores the index.

    It covers the column names and dtypes, in order, and every value, row by row.

    :param df: the frame to hash.
    """
    header = json.dumps([[repr(name), str(dtype)] for name, dtype in df.dtypes.items()] + [len(df)])
    digest = hashlib.sha256(header.encode())
    if len(df.columns):
        row_hashes = pd.util.hash_pandas_object(df, index=False).to_numpy(dtype="<u8")
        digest.update(row_hashes.tobytes())
    return digest.hexdigest()[:16]
