"""The predictions file: its columns, its statistics, and a writer that appends chunks and commits once.

Chunks go to a local temporary parquet file as they are scored (one row group each); :meth:`PredictionsWriter.commit`
then renames it over the destination (local) or uploads it (``s3://``). Nothing appears at the destination
before the commit, so a run that fails midway leaves the previous file, or none, and a retry overwrites.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from airflow_mlops_provider.contracts import PredictionColumn, ProblemType
from airflow_mlops_provider.core.io.storage import ObjectStore, is_s3_uri, local_path

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

#: The threshold of the positive rate of a binary model.
POSITIVE_THRESHOLD = 0.5
_TMP_PREFIX = ".tmp-"


def predictions_frame(
    rows: pd.DataFrame, keys: Sequence[str], timestamp: str, predictions: np.ndarray, version: str, scored_at: str
) -> pd.DataFrame:
    """The rows of a predictions file: key columns, the event time, and :class:`PredictionColumn`'s columns.

    :param rows: the scored rows (key and time columns).
    :param keys: the entity key columns.
    :param timestamp: the event time column (UTC timestamps).
    :param predictions: one per row.
    :param version: the model version that scored them.
    :param scored_at: when the run scored (ISO 8601, UTC).
    """
    frame = rows[[*keys, timestamp]].reset_index(drop=True)
    return frame.assign(
        **{
            PredictionColumn.PREDICTION: np.asarray(predictions, dtype=np.float64),
            PredictionColumn.MODEL_VERSION: pd.Series([version] * len(frame), dtype=object),
            PredictionColumn.SCORED_AT: pd.Series([scored_at] * len(frame), dtype=object),
        }
    )


def prediction_statistics(predictions: np.ndarray, problem_type: str | None) -> dict[str, float]:
    """``count``, ``mean``, ``std`` (population), ``min``, ``p50``, ``max``, and for a binary model
    ``positive_rate`` (the share of predictions at or above :data:`POSITIVE_THRESHOLD`); only ``count``
    when there is no prediction.

    :param predictions: every prediction of the run.
    :param problem_type: ``binary`` adds the positive rate.
    """
    values = np.asarray(predictions, dtype=np.float64)
    if values.size == 0:
        return {"count": 0.0}
    stats = {
        "count": float(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "p50": float(np.median(values)),
        "max": float(values.max()),
    }
    if problem_type == ProblemType.BINARY:
        stats["positive_rate"] = float((values >= POSITIVE_THRESHOLD).mean())
    return stats


class PredictionsWriter:
    """Append prediction chunks to a temporary parquet file; :meth:`commit` puts it at ``uri``.

    Use it as a context manager: leaving the block without a commit deletes the temporary file.

    :param uri: the destination, a local path or ``s3://`` URI.
    :param store: the store that writes it (and checks the allowed roots).
    """

    def __init__(self, uri: str, store: ObjectStore) -> None:
        store.config.check_allowed(uri)
        self.uri = uri
        self.store = store
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        if is_s3_uri(uri):
            fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".parquet")
        else:
            target = local_path(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{target.name}.", dir=target.parent)
        os.close(fd)
        self._path = Path(name)

    def __enter__(self) -> PredictionsWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
        self._path.unlink(missing_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (a :func:`predictions_frame`) as one row group; every chunk takes the first's schema.

        :param frame: the chunk's predictions.
        :raises ValueError: a column's type differs from the first chunk's and cannot be cast to it.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._path, table.schema)
        else:
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as err:
                raise ValueError(f"a chunk's columns do not match the first chunk's: {err}") from err
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        """Finish the temporary file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def commit(self) -> str:
        """Put the file at the destination: a rename next to it (local), or an upload (``s3://``); return the URI.

        :raises ValueError: nothing was written.
        """
        if self._schema is None:
            raise ValueError("no predictions were written")
        self.close()
        if is_s3_uri(self.uri):
            self.store.write_bytes(self.uri, self._path.read_bytes())
        else:
            os.replace(self._path, local_path(self.uri))
        return self.uri
