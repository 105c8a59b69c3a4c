"""core.validation.reading: a truncated CSV file is refused, not read as nulls."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlops_provider.core.validation.reading import read_batch, truncated_csv_row

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
