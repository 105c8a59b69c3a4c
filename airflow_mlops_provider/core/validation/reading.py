"""Read a dataset to profile or validate, refusing a CSV file whose last row was cut short.

pandas fills the missing fields of a short row with nulls, so a truncated CSV file (an interrupted upload
or export) would be profiled as allowed nulls, or judged on values nobody wrote. Its last row is compared
with the header: fewer fields means the file was cut.
"""

from __future__ import annotations

import csv
import gzip
from typing import TYPE_CHECKING

from airflow_mlops_provider.core.io.datasets import dataset_format, read_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore

if TYPE_CHECKING:
    import pandas as pd


def read_batch(uri: str, store: ObjectStore | None = None) -> pd.DataFrame:
    """Read a parquet or CSV dataset as :func:`~airflow_mlops_provider.core.io.datasets.read_dataset` does,
    and refuse a CSV file whose last row has fewer fields than its header.

    :param uri: a local path, ``file://`` or ``s3://`` URI.
    :param store: the store to read through; a default :class:`ObjectStore` if ``None``.
    :raises FileNotFoundError: if nothing exists at ``uri``.
    :raises ValueError: if the suffix is unsupported, the content cannot be parsed, or a CSV file is truncated.
    """
    store = store or ObjectStore()
    frame = read_dataset(uri, store=store)
    fmt = dataset_format(uri)
    if fmt != "parquet":
        data = store.read_bytes(uri)
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
