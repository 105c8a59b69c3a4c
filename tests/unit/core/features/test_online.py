"""The rows a materialization puts online: the newest of each entity."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from airflow_mlops_provider.core.features.online import newest_rows
from airflow_mlops_provider.core.features.specs import FeatureViewSpec

VIEW = FeatureViewSpec("v", {"customer_id": "Int64"}, {"plan": "String"}, "event_timestamp")


def test_the_newest_row_of_each_entity_is_kept_in_table_order() -> None:
    stamps = pd.to_datetime(
        ["2024-01-02", "2024-01-01", "2024-01-03", "2024-01-01", "2024-01-02", "2024-01-02"], utc=True
    )
    chunks = [
        pa.table({"customer_id": [1, 2, 1], "plan": ["a", "b", "c"], "event_timestamp": stamps[:3]}),
        pa.table({"customer_id": [3, 2, 2], "plan": ["d", "e", "f"], "event_timestamp": stamps[3:]}),
    ]
    newest = newest_rows(pa.concat_tables(chunks), VIEW)
    assert newest.num_rows == 3 and newest.column("customer_id").num_chunks == 1  # one batch, as Feast converts
    # customer 1: its later row; customer 2: of its two rows at the same newest time, the last one
    assert newest.to_pydict()["customer_id"] == [1, 3, 2]
    assert newest.to_pydict()["plan"] == ["c", "d", "f"]
