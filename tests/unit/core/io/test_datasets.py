"""read_dataset / read_batch / write_dataset / dataset_digest on local paths; a truncated CSV file is refused by
read_batch, not read as nulls."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops_provider.core.io.datasets import (
    dataset_digest,
    dataset_files,
    dataset_files_under,
    dataset_format,
    read_batch,
    read_dataset,
    read_datasets,
    truncated_csv_row,
    write_dataset,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 50
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype="int64"),
            "event_timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "monthly_charges": rng.normal(50, 10, n),
            "plan": pd.Categorical(rng.choice(["basic", "standard", "premium"], n)),
            "region": rng.choice(["north", "south"], n).astype(object),
            "churned": rng.integers(0, 2, n),
        }
    )


def _simple_frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, -2.0], "c": ["x", "y", "z"]})


def test_parquet_round_trip_keeps_values_dtypes_and_digest(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "nested" / "dir" / "train.parquet")
    digest = write_dataset(frame, uri)
    back = read_dataset(uri)
    pd.testing.assert_frame_equal(back, frame)
    assert digest == dataset_digest(back) == dataset_digest(frame)


def test_file_uri_round_trip(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = (tmp_path / "train.parquet").as_uri()
    assert uri.startswith("file://")
    write_dataset(frame, uri)
    pd.testing.assert_frame_equal(read_dataset(uri), frame)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".CSV"])
def test_csv_round_trip(tmp_path: Path, suffix: str) -> None:
    df = _simple_frame()
    uri = str(tmp_path / f"data{suffix}")
    digest = write_dataset(df, uri)
    back = read_dataset(uri)
    pd.testing.assert_frame_equal(back, df)
    assert digest == dataset_digest(back)


def test_csv_gz_is_really_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    write_dataset(_simple_frame(), str(path))
    assert gzip.decompress(path.read_bytes()).decode().splitlines()[0] == "a,b,c"


@pytest.mark.parametrize("name", ["data.parquet", "data.csv"])
def test_read_selected_columns_in_requested_order(tmp_path: Path, name: str) -> None:
    uri = str(tmp_path / name)
    write_dataset(_simple_frame(), uri)
    back = read_dataset(uri, columns=["c", "a"])
    assert list(back.columns) == ["c", "a"]
    assert back["a"].tolist() == [1, 2, 3]


def test_write_does_not_store_the_index(tmp_path: Path) -> None:
    df = _simple_frame().set_index(pd.Index([10, 20, 30]))
    uri = str(tmp_path / "data.parquet")
    digest = write_dataset(df, uri)
    back = read_dataset(uri)
    assert list(back.columns) == ["a", "b", "c"]
    assert digest == dataset_digest(back)


def test_overwrite_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    uri = str(tmp_path / "data.parquet")
    write_dataset(_simple_frame(), uri)
    changed = _simple_frame().assign(a=[7, 8, 9])
    write_dataset(changed, uri)
    assert read_dataset(uri)["a"].tolist() == [7, 8, 9]
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]


def test_digest_is_16_hex_chars_and_ignores_index_and_copies(frame: pd.DataFrame) -> None:
    digest = dataset_digest(frame)
    assert len(digest) == 16
    int(digest, 16)
    shuffled_index = frame.copy().set_index(pd.Index(np.arange(len(frame))[::-1]))
    assert dataset_digest(shuffled_index) == digest
    assert dataset_digest(frame.copy(deep=True)) == digest


def test_digest_changes_with_content(frame: pd.DataFrame) -> None:
    digest = dataset_digest(frame)
    one_value = frame.copy()
    one_value.loc[3, "monthly_charges"] += 1e-9
    assert dataset_digest(one_value) != digest
    one_label = frame.copy()
    one_label.loc[0, "region"] = "east" if one_label.loc[0, "region"] != "east" else "west"
    assert dataset_digest(one_label) != digest
    assert dataset_digest(frame.iloc[::-1]) != digest
    assert dataset_digest(frame[list(frame.columns)[::-1]]) != digest
    assert dataset_digest(frame.rename(columns={"churned": "target"})) != digest
    assert dataset_digest(frame.astype({"churned": "float64"})) != digest
    assert dataset_digest(frame.iloc[:-1]) != digest


def test_digest_of_empty_frames_depends_on_columns() -> None:
    assert dataset_digest(pd.DataFrame()) != dataset_digest(pd.DataFrame({"a": pd.Series([], dtype="int64")}))


def test_digest_is_stable_across_processes(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "train.parquet")
    digest = write_dataset(frame, uri)
    code = (
        "import sys\n"
        "from airflow_mlops_provider.core.io.datasets import dataset_digest, read_dataset\n"
        "print(dataset_digest(read_dataset(sys.argv[1])))\n"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, uri],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == digest


def test_missing_file_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    uri = str(tmp_path / "nope.parquet")
    with pytest.raises(FileNotFoundError, match=re.escape(uri)):
        read_dataset(uri)


def test_missing_file_uri_raises_naming_the_uri(tmp_path: Path) -> None:
    uri = (tmp_path / "nope.csv").as_uri()
    with pytest.raises(FileNotFoundError) as info:
        read_dataset(uri)
    assert uri in str(info.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.parquet", b"PAR1 this is not parquet at all"),
        ("bad.csv.gz", b"not gzip"),
        ("bad.csv", b"a,b\n1,2\n\xff\xfe\x00broken"),
        ("truncated.parquet", None),
    ],
)
def test_corrupt_file_raises_value_error_naming_uri_and_cause(tmp_path: Path, name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is None:
        write_dataset(_simple_frame(), str(path))
        content = path.read_bytes()[:-20]
    path.write_bytes(content)
    with pytest.raises(ValueError, match="cannot read dataset") as info:
        read_dataset(str(path))
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None
    assert type(info.value.__cause__).__name__ in str(info.value)


def test_unknown_column_raises_value_error(tmp_path: Path) -> None:
    uri = str(tmp_path / "data.parquet")
    write_dataset(_simple_frame(), uri)
    with pytest.raises(ValueError, match=re.escape(uri)):
        read_dataset(uri, columns=["a", "missing"])


@pytest.mark.parametrize("name", ["data.json", "data.txt", "data", "data.parquet.bak"])
def test_unsupported_suffix_is_rejected(tmp_path: Path, name: str) -> None:
    uri = str(tmp_path / name)
    with pytest.raises(ValueError, match="unsupported dataset format"):
        write_dataset(_simple_frame(), uri)
    with pytest.raises(ValueError, match="unsupported dataset format"):
        read_dataset(uri)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("uri", "fmt"),
    [
        ("s3://bucket/a/b.parquet", "parquet"),
        ("/x/y.pq", "parquet"),
        ("file:///x/y.csv", "csv"),
        ("s3://b/k.CSV.GZ", "csv.gz"),
    ],
)
def test_dataset_format(uri: str, fmt: str) -> None:
    assert dataset_format(uri) == fmt


def test_unsupported_scheme_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported URI scheme"):
        read_dataset("gs://bucket/data.parquet")


def test_a_prefix_reads_every_dataset_file_under_it_in_name_order(tmp_path: Path, frame: pd.DataFrame) -> None:
    folder = tmp_path / "parts"
    write_dataset(frame.iloc[2:], str(folder / "b.parquet"))
    write_dataset(frame.iloc[:2], str(folder / "a.csv"))
    (folder / "notes.txt").write_text("not a dataset")

    assert dataset_files(f"{folder}/") == [str(folder / "a.csv"), str(folder / "b.parquet")]
    combined = read_datasets(f"{folder}/")
    assert combined["customer_id"].tolist() == frame["customer_id"].tolist()  # a.csv's rows, then b.parquet's
    assert dataset_files(str(folder / "b.parquet")) == [str(folder / "b.parquet")]  # a file is itself
    with pytest.raises(FileNotFoundError, match="no parquet or CSV files under"):
        dataset_files(f"{tmp_path / 'empty'}/")
    assert dataset_files_under(f"{folder}/") == [str(folder / "a.csv"), str(folder / "b.parquet")]
    assert dataset_files_under(f"{tmp_path / 'empty'}/") == []  # none is not an error: e.g. an empty landing zone


WHOLE = b"id,plan,score\n1,basic,0.5\n2,premium,0.7\n"


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (WHOLE, None),
        (WHOLE.rstrip(b"\n"), None),  # no final newline, but a whole row
        (WHOLE + b"\n\n", None),
        (b"id,plan,score\n", None),
        (b"id,plan,score\r\n1,basic,0.5\r\n", None),
        (b'id,note,score\n1,"two\nlines",0.5\n', None),  # the last line continues a quoted field
        (b"id,plan,score\n1,,\n", None),  # empty fields are fields
        (WHOLE + b"3,bas", "its last row has 2 of the header's 3 fields ('3,bas'), and the file does not end with"),
        (WHOLE + b"3\n", "its last row has 1 of the header's 3 fields ('3')"),
        (b"id,plan,score\r\n1,basic\r\n", "its last row has 2 of the header's 3 fields ('1,basic')"),
    ],
)
def test_a_short_last_row_is_found(data: bytes, cut: str | None) -> None:
    found = truncated_csv_row(data)
    assert found == cut if cut is None else found is not None and found.startswith(cut)


@pytest.mark.parametrize("name", ["batch.csv", "batch.csv.gz"])
def test_read_batch_refuses_a_truncated_csv_file(tmp_path: Path, name: str) -> None:
    data = WHOLE + b"3,prem"
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(ValueError, match=rf"{path} looks truncated: its last row has 2 of the header's 3 fields"):
        read_batch(str(path))


def test_read_batch_reads_whole_files_as_read_dataset_does(tmp_path: Path) -> None:
    (tmp_path / "whole.csv").write_bytes(WHOLE)
    frame = pd.DataFrame({"id": [1, 2], "plan": ["basic", "premium"], "score": [0.5, 0.7]})
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    for name in ("whole.csv", "whole.parquet"):
        pd.testing.assert_frame_equal(read_batch(str(tmp_path / name)), frame)
