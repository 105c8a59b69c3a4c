"""Spreading landed batches over the ingestion's mapped tasks."""

from __future__ import annotations

import pytest

from airflow_mlops_provider.core.features.ingestion import spread


@pytest.mark.parametrize(
    ("count", "chunks", "sizes"),
    [(5, 4, [2, 1, 1, 1]), (200, 4, [50, 50, 50, 50]), (3, 4, [1, 1, 1]), (7, 1, [7]), (0, 4, []), (10, 3, [4, 3, 3])],
)
def test_batches_are_spread_evenly_in_order(count: int, chunks: int, sizes: list[int]) -> None:
    batches = [f"b{i:03d}" for i in range(count)]
    spread_out = spread(batches, chunks)
    assert [len(chunk) for chunk in spread_out] == sizes
    assert [batch for chunk in spread_out for batch in chunk] == batches  # each once, oldest first


def test_at_least_one_chunk() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        spread(["b"], 0)
