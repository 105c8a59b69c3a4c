"""Kubernetes resource quantities (``4``, ``500m``, ``16Gi``, ``1e3``), checked without the Kubernetes clients.

The grammar is Kubernetes' own (``k8s.io/apimachinery/pkg/api/resource``), with the suffixes the Python
client's ``parse_quantity`` accepts; a DAG file that builds a ``GPUTrainingOperator`` checks its requests
with it when it is parsed, where importing the clients would cost seconds.
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?"
)


def is_positive_quantity(value: object) -> bool:
    """Whether ``value`` is a Kubernetes quantity string above zero.

    :param value: what an operator argument was given.
    """
    if not isinstance(value, str) or (match := _QUANTITY.fullmatch(value)) is None:
        return False
    return Decimal(match["number"]) > 0
