"""Put the rows just written offline online: the newest row of each entity, unless a newer one is online.

It leaves the online store as Feast's ``materialize(start, end)`` would, at the cost of the rows written:
Feast's file offline store reads every part of the source for any range, so each ingestion would cost
what all the stored rows cost. Each ingestion puts its own rows online, so the online store holds the
newest stored row of every entity; comparing each entity's newest new row with the online one keeps it
so, and a late, older batch does not overwrite newer online values. The window is recorded in the
registry as materialized, as Feast records it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from airflow_mlops_provider.core.features.batches import to_utc
from airflow_mlops_provider.core.features.specs import FeatureViewSpec

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

#: Entity keys read from the online store at once (SQLite limits the parameters of one statement).
READ_SLICE = 1_000


def newest_rows(table: pa.Table, view: FeatureViewSpec) -> pa.Table:
    """The newest row of each entity in ``table``, in table order; of rows with the same timestamp, the last.

    :param table: conformed rows of ``view`` (see :func:`~airflow_mlops_provider.core.features.batches.conform_batch`).
    :param view: the feature view.
    """
    keys = table.select([*view.entities, view.timestamp_field]).to_pandas()
    newest = keys.sort_values(view.timestamp_field, kind="stable").drop_duplicates(list(view.entities), keep="last")
    return table.take(pa.array(sorted(newest.index), pa.int64())).combine_chunks()


def write_online(
    store: FeatureStore, view: FeatureViewSpec, table: pa.Table, window: tuple[pd.Timestamp, pd.Timestamp]
) -> None:
    """Write the newest row of each entity in ``table`` to the online store where none as new is online,
    and record ``window`` as materialized.

    :param store: the feature store.
    :param view: the feature view.
    :param table: the rows just written to the offline store, conformed to ``view``.
    :param window: the range the online store is now up to date for.
    """
    from feast.utils import _convert_arrow_to_proto  # Feast's own conversion, as its materialization uses

    feature_view = store.get_feature_view(view.name, allow_registry_cache=True)
    provider = store._get_provider()
    join_keys = {entity.name: entity.dtype.to_value_type() for entity in feature_view.entity_columns}
    rows = _convert_arrow_to_proto(newest_rows(table, view), feature_view, join_keys)
    online = [
        stamp
        for start in range(0, len(rows), READ_SLICE)
        for stamp, _ in provider.online_read(
            store.config, feature_view, [row[0] for row in rows[start : start + READ_SLICE]]
        )
    ]
    newer = [row for row, stamp in zip(rows, online, strict=True) if stamp is None or to_utc(stamp) <= to_utc(row[2])]
    if newer:
        provider.online_write_batch(store.config, feature_view, newer, progress=None)
    start, end = window
    store.registry.apply_materialization(feature_view, store.project, start.to_pydatetime(), end.to_pydatetime())
