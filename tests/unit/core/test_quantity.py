"""Kubernetes quantities are checked without the Kubernetes clients, and agree with them."""

from __future__ import annotations

import pytest
from kubernetes.utils.quantity import parse_quantity

from airflow_mlops_provider.core.quantity import is_positive_quantity

VALUES = [
    "4", "500m", "16Gi", "1.5", ".5", "2.", "1e3", "1E-2", "+3", "0.1Ki", "7n", "3u", "1k", "2M", "1Ti", "1Pi",
    "1Ei", "1P", "1E",  # valid and positive
    "0", "0Gi", "-1", "-500m", "0.0",  # valid, not positive
    "", "lots", "16GB", "1.2.3", "Gi", "m", "1e", "1ei", "0x10",  # invalid
]  # fmt: skip
#: Refused by the API server's grammar, though the Python client's ``parse_quantity`` takes them (its
#: ``Decimal`` allows spaces and underscores): refused here, before the pod is ever sent.
LENIENT_IN_THE_CLIENT = ["16 Gi", "1_000", " 4", "4 "]


def _kubernetes_says(value: str) -> bool:
    try:
        return parse_quantity(value) > 0
    except ValueError:
        return False


@pytest.mark.parametrize("value", VALUES)
def test_positive_quantity_agrees_with_the_kubernetes_client(value: str) -> None:
    assert is_positive_quantity(value) == _kubernetes_says(value)


@pytest.mark.parametrize("value", LENIENT_IN_THE_CLIENT)
def test_what_only_the_python_client_takes_is_refused(value: str) -> None:
    assert _kubernetes_says(value) and not is_positive_quantity(value)


def test_the_corpus_has_both_answers() -> None:
    assert {is_positive_quantity(value) for value in VALUES} == {True, False}


@pytest.mark.parametrize("value", [4, 0.5, None, b"4"])
def test_only_strings_are_quantities(value: object) -> None:
    assert not is_positive_quantity(value)
