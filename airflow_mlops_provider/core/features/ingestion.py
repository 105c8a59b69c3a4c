"""Ingest raw batches into a feature view: check each, write one offline part per batch, materialize once.

A batch that cannot be ingested (unreadable, not matching the view, an id another batch of the call has)
is refused on its own, before anything of it is written; the others go on. Each part is named by its
batch id and replaced whole, so a retry after a crash rewrites the same parts instead of adding rows, and
materializing again puts the same newest values online.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from airflow_mlops_provider.core.features import batches as raw
from airflow_mlops_provider.core.features.feast_repo import online_store_address
from airflow_mlops_provider.core.features.offline_source import materialization_window, part_uri, write_part
from airflow_mlops_provider.core.features.online import write_online
from airflow_mlops_provider.core.features.specs import FeatureViewSpec
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.failpoints import failpoint

if TYPE_CHECKING:
    from feast import FeatureStore


class MaterializationError(RuntimeError):
    """The online store could not be written (transient: a retry writes the same values)."""


@dataclass(frozen=True)
class IngestedBatch:
    """One batch in the offline store.

    :param batch_id: its id, which names its part.
    :param uri: where it was read.
    :param part_uri: its part file.
    :param rows: its rows.
    """

    batch_id: str
    uri: str
    part_uri: str
    rows: int


@dataclass(frozen=True)
class Ingestion:
    """What :func:`ingest_batches` did.

    :param ingested: the batches written, in the order given.
    :param refused: batch URI -> why it was not ingested (nothing of it was written).
    :param window: the materialized range; ``None`` when nothing was ingested.
    :param schema: column -> arrow type of the rows written.
    """

    ingested: list[IngestedBatch]
    refused: dict[str, str]
    window: tuple[pd.Timestamp, pd.Timestamp] | None
    schema: dict[str, str] = field(default_factory=dict)


def ingest_batches(
    store: FeatureStore,
    view: FeatureViewSpec,
    batch_uris: Sequence[str],
    storage: ObjectStore | None = None,
    batch_ids: Sequence[str] | None = None,
    max_clock_skew: timedelta = raw.DEFAULT_MAX_CLOCK_SKEW,
) -> Ingestion:
    """Check every batch, write a part for each good one, then materialize them all at once.

    Materializing puts the newest row of each entity of the batches online unless a newer one is there
    (:func:`~airflow_mlops_provider.core.features.online.write_online`), so the online store holds the latest
    values even when an older batch arrives after newer ones, at a cost that does not grow with the rows
    stored. The materialized range runs from the oldest ingested row to the newest data of the view.

    :param store: the feature store.
    :param view: the feature view, from :func:`~airflow_mlops_provider.core.features.feast_repo.feature_view`.
    :param batch_uris: the raw batches (parquet or CSV, local or ``s3://``).
    :param storage: the store to read and write through.
    :param batch_ids: the batches' ids; ``None``: each file's name without its suffix.
    :param max_clock_skew: how far past the current time an event timestamp may be.
    :raises ValueError: ``batch_ids`` does not match ``batch_uris``, or the view's source is a single file.
    """
    if batch_ids is not None and len(batch_ids) != len(batch_uris):
        raise ValueError(f"{len(batch_ids)} batch ids for {len(batch_uris)} batches")
    storage = storage or ObjectStore()
    now = pd.Timestamp.now(tz="UTC")
    tables: dict[str, tuple[str, pa.Table]] = {}
    refused: dict[str, str] = {}
    owners: dict[str, str] = {}
    for index, uri in enumerate(batch_uris):
        try:
            batch_id = raw.safe_batch_id(batch_ids[index] if batch_ids is not None else raw.batch_id_from_uri(uri))
            if batch_id in owners:
                raise raw.BatchValidationError(f"batch id {batch_id!r} is also the id of {owners[batch_id]}")
            frame = raw.load_batch(uri, storage)
            tables[uri] = batch_id, raw.conform_batch(frame, view, uri, now, max_clock_skew)
            owners[batch_id] = uri
        except (ValueError, FileNotFoundError) as err:
            refused[uri] = str(err)
    ingested = []
    for index, (uri, (batch_id, table)) in enumerate(tables.items()):
        if index:
            failpoint("ingestion.between_batches")
        part = part_uri(view.source_uri, batch_id)
        write_part(table, part, storage)
        ingested.append(IngestedBatch(batch_id, uri, part, table.num_rows))
    if not tables:
        return Ingestion(ingested, refused, None)
    failpoint("ingestion.before_materialize")
    written = pa.concat_tables(table for _, table in tables.values())
    start, end = materialization_window(written, view.timestamp_field, view.source_uri, storage)
    try:
        write_online(store, view, written, (start, end))
    except Exception as err:  # a server down, a timeout: the task's retry materializes again
        raise MaterializationError(
            f"materializing {view.name} from {start} to {end} into the online store ({online_store_address(store)}) "
            f"failed: {type(err).__name__}: {err}; the batches' offline parts are written, a retry materializes them"
        ) from err
    schema = {column.name: str(column.type) for column in written.schema}
    return Ingestion(ingested, refused, (start, end), schema)


def spread(batch_uris: Sequence[str], chunks: int) -> list[list[str]]:
    """Split batches into at most ``chunks`` chunks of consecutive batches, as even as can be.

    :param batch_uris: the batches, in the order to ingest them (oldest first, usually).
    :param chunks: the most chunks wanted (at least 1): one per task that will handle them.
    :raises ValueError: ``chunks`` below 1.
    """
    if chunks < 1:
        raise ValueError(f"the number of chunks must be at least 1, got {chunks}")
    count = min(chunks, len(batch_uris))
    size, extra = divmod(len(batch_uris), count) if count else (0, 0)
    bounds = [index * size + min(index, extra) for index in range(count + 1)]
    return [list(batch_uris[bounds[i] : bounds[i + 1]]) for i in range(count)]
