"""Where the rows to score come from, a chunk at a time: a dataset (parquet row batches, CSV chunks), a
time window of it, and features from a Feast online store.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from airflow_mlops_provider.core.features.batches import utc_timestamps
from airflow_mlops_provider.core.features.point_in_time import TimeWindow
from airflow_mlops_provider.core.io.datasets import dataset_files_under, dataset_format
from airflow_mlops_provider.core.io.storage import ObjectStore, is_s3_uri, local_path

if TYPE_CHECKING:
    from feast import FeatureStore


def input_files(uri: str, store: ObjectStore) -> list[str]:
    """The files of a dataset URI: itself, or the parquet/CSV files under a ``/``-terminated prefix (none
    is an empty list: nothing to score).

    :param uri: a file, or a directory or ``s3://`` prefix ending in ``/``.
    :param store: the store to list through.
    """
    return dataset_files_under(uri, store) if uri.endswith("/") else [uri]


def read_chunks(uri: str, columns: Sequence[str], chunk_rows: int, store: ObjectStore) -> Iterator[pd.DataFrame]:
    """The ``columns`` of a dataset, at most ``chunk_rows`` rows at a time, file after file in name order.

    A local parquet file is read a row batch at a time; one on S3 is fetched whole, then decoded a batch at a
    time; a CSV is parsed ``chunk_rows`` lines at a time.

    :param uri: see :func:`input_files`.
    :param columns: the columns to read.
    :param chunk_rows: the most rows per chunk.
    :param store: the store to read through.
    :raises FileNotFoundError: a named file does not exist.
    :raises ValueError: a file lacks a column, or cannot be parsed.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    for file in input_files(uri, store):
        try:
            yield from _file_chunks(file, list(columns), chunk_rows, store)
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as err:
            raise ValueError(f"cannot read {file}: {type(err).__name__}: {err}") from err


def _file_chunks(uri: str, columns: list[str], chunk_rows: int, store: ObjectStore) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    fmt = dataset_format(uri)
    store.config.check_allowed(uri)
    if is_s3_uri(uri):
        source: str | io.BytesIO = io.BytesIO(store.read_bytes(uri))
    else:
        path = local_path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"no such object: {uri}")
        source = str(path)
    if fmt == "parquet":
        parquet = pq.ParquetFile(source)
        absent = [name for name in columns if name not in parquet.schema_arrow.names]
        if absent:
            raise ValueError(f"no columns {absent} (it has {parquet.schema_arrow.names})")
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
        return
    compression = "gzip" if fmt == "csv.gz" else None
    with pd.read_csv(source, chunksize=chunk_rows, compression=compression) as reader:
        for chunk in reader:
            absent = [name for name in columns if name not in chunk.columns]
            if absent:
                raise ValueError(f"no columns {absent} (it has {sorted(map(str, chunk.columns))})")
            yield chunk[columns]


def rows_in_window(
    frame: pd.DataFrame, keys: Sequence[str], timestamp: str, window: TimeWindow | None = None
) -> pd.DataFrame:
    """The rows of ``frame`` whose event time is in ``window``, with UTC timestamps; index reset.

    :param frame: a chunk of rows.
    :param keys: the entity key columns; a null key is refused.
    :param timestamp: the event time column (datetimes, or ISO 8601 strings with an offset).
    :param window: ``[start, end)``; ``None``: every row.
    :raises ValueError: null keys, or event times that are null or naive.
    """
    nulls = {key: int(n) for key in keys if (n := frame[key].isna().sum())}
    if nulls:
        raise ValueError(f"the rows have null entity keys (rows per column: {nulls})")
    times = utc_timestamps(frame[timestamp], timestamp)
    window = window or TimeWindow()
    keep = pd.Series(True, index=frame.index)
    if window.start is not None:
        keep &= times >= window.start
    if window.end is not None:
        keep &= times < window.end
    return frame.assign(**{timestamp: times})[keep].reset_index(drop=True)


def online_features(store: FeatureStore, service: str, rows: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``rows`` with the latest values of the feature service's features from the online store, in order.

    An entity the store does not know gets null features.

    :param store: the feature store.
    :param service: the feature service's name.
    :param rows: the entity rows: key columns (and any others, kept).
    :param keys: the entity key columns the service joins on.
    :raises ValueError: the store answered for other rows than asked.
    """
    entity_rows = {key: rows[key].tolist() for key in keys}
    served = store.get_online_features(features=store.get_feature_service(service), entity_rows=entity_rows).to_df()
    if len(served) != len(rows) or any(served[key].tolist() != entity_rows[key] for key in keys):
        raise ValueError(f"the online store returned {len(served)} rows for {len(rows)} entity rows, or another order")
    features = served.drop(columns=list(keys))
    clash = sorted(set(features.columns) & set(rows.columns))
    if clash:
        raise ValueError(f"the entity rows have columns {clash} with the names of served features; rename them")
    return pd.concat([rows.reset_index(drop=True), features.reset_index(drop=True)], axis=1)
