"""Optional heavy libraries: cheap presence checks and lazy imports, with errors that name the extra."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

#: The import names each extra of ``pyproject.toml`` brings.
EXTRAS: dict[str, tuple[str, ...]] = {
    "trainer": ("torch", "mlflow", "pandas", "pyarrow"),
    "feast": ("feast", "pandas", "pyarrow"),
    "gx": ("great_expectations", "pandas"),
    "evidently": ("evidently", "pandas", "scipy"),
}


class MissingExtraError(ImportError):
    """An optional dependency of the provider is not installed."""

    def __init__(self, modules: list[str], extra: str) -> None:
        super().__init__(
            f"{', '.join(modules)} not installed; install the {extra!r} extra: "
            f'pip install "airflow-mlops-provider[{extra}]"'
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_extra(extra: str) -> None:
    """Fail fast, without importing anything heavy, when a module of ``extra`` is missing.

    :param extra: a key of :data:`EXTRAS`.
    """
    missing = [module for module in EXTRAS[extra] if not _installed(module)]
    if missing:
        raise MissingExtraError(missing, extra)


def import_optional(module: str, extra: str) -> ModuleType:
    """Import ``module``, or fail with the pip command that installs it.

    :param module: dotted module name, e.g. ``"torch"``.
    :param extra: the provider extra that brings it, e.g. ``"trainer"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError([module], extra) from err
