"""Reading rows to score a chunk at a time, and keeping a time window of them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from airflow_mlops_provider.core.features.point_in_time import parse_window
from airflow_mlops_provider.core.inference.sources import read_chunks, rows_in_window
from airflow_mlops_provider.core.io.storage import ObjectStore

COLUMNS = ["customer_id", "event_timestamp", "plan"]


def test_parquet_and_csv_files_under_a_prefix_are_read_in_chunks(rows: pd.DataFrame, tmp_path: Path) -> None:
    rows.iloc[:120].to_parquet(tmp_path / "a.parquet", row_group_size=50)
    csv = rows.iloc[120:].assign(event_timestamp=rows["event_timestamp"].iloc[120:].map(pd.Timestamp.isoformat))
    csv.to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "notes.txt").write_text("not a dataset")

    chunks = list(read_chunks(f"{tmp_path}/", COLUMNS, 30, ObjectStore()))

    assert [len(c) for c in chunks] == [30, 30, 30, 30, 30, 30, 20]  # file by file
    assert all(list(c.columns) == COLUMNS for c in chunks)
    both = pd.concat([rows_in_window(c, ["customer_id"], "event_timestamp") for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(both, rows[COLUMNS])


def test_a_file_without_a_needed_column_or_an_empty_prefix(rows: pd.DataFrame, tmp_path: Path) -> None:
    rows.drop(columns="plan").to_parquet(tmp_path / "a.parquet")

    with pytest.raises(ValueError, match=r"cannot read .*a.parquet: .*no columns \['plan'\]"):
        list(read_chunks(str(tmp_path / "a.parquet"), COLUMNS, 10, ObjectStore()))
    with pytest.raises(FileNotFoundError, match="no such object"):
        list(read_chunks(str(tmp_path / "missing.parquet"), COLUMNS, 10, ObjectStore()))
    assert list(read_chunks(f"{tmp_path}/empty/", COLUMNS, 10, ObjectStore())) == []
    with pytest.raises(ValueError, match="chunk_rows must be at least 1"):
        list(read_chunks(str(tmp_path / "a.parquet"), COLUMNS, 0, ObjectStore()))


def test_rows_in_the_window_are_kept_and_bad_keys_or_times_refused(rows: pd.DataFrame) -> None:
    window = parse_window("2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z")

    kept = rows_in_window(rows[COLUMNS], ["customer_id"], "event_timestamp", window)

    times = rows["event_timestamp"]
    assert len(kept) == int(((times >= window.start) & (times < window.end)).sum()) > 0
    assert kept["event_timestamp"].between(window.start, window.end, inclusive="left").all()
    with pytest.raises(ValueError, match="null entity keys"):
        rows_in_window(rows[COLUMNS].astype({"customer_id": "float64"}).assign(customer_id=None), ["customer_id"],
                       "event_timestamp")  # fmt: skip
    with pytest.raises(ValueError, match="naive timestamps"):
        rows_in_window(rows[COLUMNS].assign(event_timestamp=times.dt.tz_localize(None)), ["customer_id"],
                       "event_timestamp")  # fmt: skip
