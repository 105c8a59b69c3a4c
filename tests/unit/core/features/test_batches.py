"""Batch checks against a feature view, part files, and the newest event time from parquet footers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_mlops_provider.core.features.batches import (
    BatchValidationError,
    archive_ingested,
    batch_id_from_uri,
    conform_batch,
    load_batch,
    utc_timestamps,
)
from airflow_mlops_provider.core.features.offline_source import (
    materialization_window,
    max_event_timestamp,
    parquet_files,
    part_uri,
    write_part,
)
from airflow_mlops_provider.core.features.specs import FeatureViewSpec
from airflow_mlops_provider.core.io.storage import ObjectStore
from demo import data as demo_data

VIEW = FeatureViewSpec(
    name="customer_stats",
    entities={"customer_id": "Int64"},
    features={
        "tenure_months": "Int64",
        "monthly_charges": "Float64",
        "support_calls": "Int32",
        "usage_gb": "Float32",
        "plan": "String",
        "region": "String",
    },
    timestamp_field="event_timestamp",
)


@pytest.fixture
def batch() -> pd.DataFrame:
    return demo_data.generate_batch(50, "2024-01-01", seed=1)


def test_conform_keeps_exactly_the_view_columns_with_their_types(batch: pd.DataFrame) -> None:
    table = conform_batch(batch, VIEW)
    assert table.column_names == VIEW.columns  # the label and other extra columns are left out
    assert table.schema.field("support_calls").type == pa.int32()
    assert table.schema.field("usage_gb").type == pa.float32()
    assert table.schema.field("event_timestamp").type == pa.timestamp("ns", tz="UTC")
    assert table.column("customer_id").to_pylist() == batch["customer_id"].tolist()


def test_conform_accepts_csv_strings_with_offsets_and_other_time_zones(batch: pd.DataFrame) -> None:
    local = batch.assign(event_timestamp=batch["event_timestamp"].dt.tz_convert("Europe/Paris"))
    text = batch.assign(event_timestamp=batch["event_timestamp"].map(lambda t: t.isoformat().replace("+00:00", "Z")))
    for frame in (local, text):
        stamps = conform_batch(frame, VIEW).column("event_timestamp").to_pandas()
        assert stamps.tolist() == batch["event_timestamp"].tolist()


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda df: df.drop(columns=["plan", "usage_gb"]), r"missing columns \['usage_gb', 'plan'\]"),
        (lambda df: df.assign(tenure_months=df["tenure_months"].astype(str)), r"'tenure_months' has dtype object"),
        (lambda df: df.assign(monthly_charges=df["plan"]), r"'monthly_charges' has dtype object, expected Float64"),
        (lambda df: df.assign(plan=1), r"'plan' has dtype int64, expected String \(string\)"),
        (lambda df: df.assign(support_calls=2**40), r"'support_calls' does not fit Int32"),
        (
            lambda df: df.assign(customer_id=df["customer_id"].astype("Int64").mask(df.index == 3)),
            r"entity column 'customer_id' has 1 null values",
        ),
        (
            lambda df: df.assign(customer_id=df["customer_id"].astype(float).mask(df.index < 2)),
            r"entity column 'customer_id' has 2 null values",
        ),
        (lambda df: df.assign(event_timestamp=df["event_timestamp"].dt.tz_localize(None)), r"naive timestamps"),
        (lambda df: df.assign(event_timestamp="2024-01-01 10:00:00"), r"naive timestamps: write them with an offset"),
        (lambda df: df.assign(event_timestamp=df["event_timestamp"].mask(df.index == 0)), r"has 1 null values"),
        (lambda df: df.assign(event_timestamp=1), r"'event_timestamp' has dtype int64, expected timestamps"),
    ],
)
def test_conform_rejects_bad_batches_clearly(
    batch: pd.DataFrame, spoil: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    with pytest.raises(
        BatchValidationError, match=rf"b1\.csv does not match feature view 'customer_stats': .*{message}"
    ):
        conform_batch(spoil(batch), VIEW, "b1.csv")


def test_conform_refuses_rows_sharing_entity_and_timestamp_naming_a_few_keys(batch: pd.DataFrame) -> None:
    twin = batch.iloc[[4, 7]].assign(monthly_charges=999.0)  # same keys, conflicting values
    with pytest.raises(BatchValidationError) as err:
        conform_batch(pd.concat([batch, twin], ignore_index=True), VIEW, "b1.csv")
    message = str(err.value)
    assert "4 rows share their ('customer_id', 'event_timestamp') with another row" in message
    for row in batch.iloc[[4, 7]].itertuples():
        assert f"'{row.customer_id}', '{row.event_timestamp}'" in message
    shuffled = batch.sample(frac=1, random_state=0)  # keys are compared row by row, whatever the index
    assert conform_batch(shuffled, VIEW).num_rows == len(batch)
    assert conform_batch(batch.set_axis(range(100, 100 + len(batch))), VIEW).num_rows == len(batch)
    # The same instant written with another offset (as in a CSV) is the same key.
    text = batch.assign(event_timestamp=batch["event_timestamp"].map(lambda t: t.isoformat()))
    paris_time = batch["event_timestamp"].iloc[4].tz_convert("Europe/Paris").isoformat()
    paris = text.iloc[[4]].assign(event_timestamp=paris_time)
    with pytest.raises(BatchValidationError, match=r"2 rows share"):
        conform_batch(pd.concat([text, paris], ignore_index=True), VIEW)


def test_conform_refuses_timestamps_past_the_clock_skew(batch: pd.DataFrame) -> None:
    now = pd.Timestamp("2024-01-02T00:00Z")
    far = pd.Timestamp("2099-01-01T00:00Z")
    late = batch.assign(event_timestamp=batch["event_timestamp"].mask(batch.index < 3, far))
    with pytest.raises(
        BatchValidationError,
        match=r"has 3 values in the future \(the latest is 2099-01-01T00:00:00"
        r"\+00:00, more than 0:15:00 after 2024-01-02T00:00:00Z\)",
    ):
        conform_batch(late, VIEW, "b1.csv", now=now)
    near = batch.assign(event_timestamp=now + pd.Timedelta(minutes=14))
    assert conform_batch(near.drop_duplicates("customer_id"), VIEW, now=now).num_rows > 0  # within the skew
    with pytest.raises(BatchValidationError, match=r"in the future"):
        conform_batch(near.drop_duplicates("customer_id"), VIEW, now=now, max_clock_skew=pd.Timedelta(minutes=1))


def test_conform_reports_every_problem_at_once(batch: pd.DataFrame) -> None:
    bad = batch.drop(columns=["region"]).assign(plan=3, event_timestamp=batch["event_timestamp"].dt.tz_localize(None))
    with pytest.raises(BatchValidationError) as err:
        conform_batch(bad, VIEW)
    assert str(err.value).count(";") == 2
    assert "missing columns ['region']" in str(err.value) and "'plan'" in str(err.value)


def test_unsupported_dtypes_are_named(batch: pd.DataFrame) -> None:
    view = FeatureViewSpec("v", {"customer_id": "Int64"}, {"plan": "Array(String)"}, "event_timestamp")
    with pytest.raises(BatchValidationError, match=r"Feast dtype Array\(String\) is not supported"):
        conform_batch(batch, view)


def test_load_batch_rejects_empty_unreadable_and_truncated_files(tmp_path: Path, batch: pd.DataFrame) -> None:
    batch.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "blank.csv").write_text("")
    batch.to_csv(tmp_path / "cut.csv", index=False)
    (tmp_path / "cut.csv").write_text((tmp_path / "cut.csv").read_text() + "17,")
    with pytest.raises(BatchValidationError, match=r"empty\.parquet has no rows"):
        load_batch(str(tmp_path / "empty.parquet"))
    for name in ("garbage.parquet", "blank.csv"):
        with pytest.raises(BatchValidationError, match=rf"cannot read batch .*{name}"):
            load_batch(str(tmp_path / name))
    with pytest.raises(BatchValidationError, match=r"cannot read batch .*cut\.csv: .*cut\.csv looks truncated"):
        load_batch(str(tmp_path / "cut.csv"))
    with pytest.raises(FileNotFoundError):
        load_batch(str(tmp_path / "absent.csv"))


def test_timestamps_parse_mixed_offsets_to_utc() -> None:
    stamps = utc_timestamps(pd.Series(["2024-01-01T02:00:00+02:00", "2024-01-01T00:30:00Z"]), "ts")
    assert stamps.tolist() == [pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-01T00:30Z")]
    assert str(stamps.dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/landing/2024-01-01.csv.gz", "2024-01-01"),
        ("/data/landing/batch 7 (retry).parquet", "batch_7_retry"),
        ("file:///x/y/run=5.CSV", "run=5"),
    ],
)
def test_batch_ids_come_from_file_names(uri: str, expected: str) -> None:
    assert batch_id_from_uri(uri) == expected


def test_parts_are_named_by_batch_in_directory_sources() -> None:
    assert part_uri("s3://b/offline/stats", "b1") == "s3://b/offline/stats/part-b1.parquet"
    assert part_uri("/x/stats/", "b1") == "/x/stats/part-b1.parquet"
    with pytest.raises(ValueError, match="single file"):
        part_uri("/x/stats.parquet", "b1")


def test_rewriting_a_part_replaces_it(tmp_path: Path, batch: pd.DataFrame) -> None:
    source = f"{tmp_path}/stats/"
    table = conform_batch(batch, VIEW)
    for _ in range(2):
        write_part(table, part_uri(source, "b1"), None)
    assert parquet_files(source) == [f"{tmp_path}/stats/part-b1.parquet"]
    assert pq.read_table(part_uri(source, "b1")).equals(table)


def test_max_event_timestamp_reads_statistics_and_falls_back_without_them(tmp_path: Path) -> None:
    source = tmp_path / "stats"
    assert max_event_timestamp(str(source), "event_timestamp") is None
    source.mkdir()
    newest = pd.Timestamp("2024-02-03T04:05:06.123456789Z")
    for name, stamp, statistics in (("a", "2024-02-01T00:00Z", True), ("b", newest, False)):
        table = pa.table({"event_timestamp": pa.array([pd.Timestamp(stamp)], pa.timestamp("ns", tz="UTC"))})
        pq.write_table(table, source / f"part-{name}.parquet", write_statistics=statistics)
    pq.write_table(pa.table({"event_timestamp": [pd.Timestamp("2030-01-01")]}), source / ".part-hidden.parquet")
    pq.write_table(pa.table({"event_timestamp": [pd.Timestamp("2030-01-01")]}), source / "_tmp.parquet")
    assert max_event_timestamp(str(source), "event_timestamp") == newest
    naive = tmp_path / "naive.parquet"
    pq.write_table(pa.table({"ts": [pd.Timestamp("2024-01-01T10:00")]}), naive)
    assert max_event_timestamp(str(naive), "ts") == pd.Timestamp("2024-01-01T10:00Z")
    with pytest.raises(ValueError, match="has no column 'nope'"):
        max_event_timestamp(str(naive), "nope")


def test_materialization_reaches_the_newest_data_of_the_source(tmp_path: Path, batch: pd.DataFrame) -> None:
    source = f"{tmp_path}/stats/"
    newer = demo_data.generate_batch(10, "2024-03-01", seed=2)
    write_part(conform_batch(newer, VIEW), part_uri(source, "newer"))
    old = conform_batch(batch, VIEW)
    write_part(old, part_uri(source, "old"))
    start, end = materialization_window(old, "event_timestamp", source)
    assert start == batch["event_timestamp"].min()
    assert end == newer["event_timestamp"].max()


def test_archiving_moves_ingested_batches_once_and_reports_the_ones_left(store_root: tuple[ObjectStore, str]) -> None:
    store, root = store_root
    landing, archive = f"{root}/landing/", f"{root}/ingested/"
    landed = [f"{landing}{name}" for name in ("a.parquet", "b.csv", "c.parquet", "d.parquet")]
    for uri in landed:
        store.write_bytes(uri, uri.encode())
    store.delete(landed[2])  # c was quarantined: it left the landing zone without being ingested
    ingested = [landed[1], landed[0]]

    first = archive_ingested(landed, ingested, archive, store)
    assert first.archived == [f"{archive}b.csv", f"{archive}a.parquet"]
    assert first.left == [landed[3]]
    assert store.list(landing) == [landed[3]]
    assert [store.read_bytes(uri) for uri in first.archived] == [landed[1].encode(), landed[0].encode()]

    again = archive_ingested(landed, ingested, archive.rstrip("/"), store)  # a retry: nothing left to move
    assert again == first
    assert store.list(archive) == sorted(first.archived)
