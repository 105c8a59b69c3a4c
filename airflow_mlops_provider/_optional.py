"""Lazy imports of optional heavy libraries, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency of the provider is not installed."""


def import_optional(module: str, extra: str) -> ModuleType:
    """Import ``module``, or fail with the pip command that installs it.

    :param module: dotted module name, e.g. ``"torch"``.
    :param extra: the provider extra that brings it, e.g. ``"trainer"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{module!r} is not installed; it comes with the {extra!r} extra: "
            f'pip install "airflow-mlops-provider[{extra}]"'
        ) from err
