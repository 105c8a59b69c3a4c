"""A registered model version's lineage: the version an alias points at, and its tags.

Light on purpose: the hook, the apply guard and the drift trigger's cheap poll call it, so it imports
only mlflow's client, lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient


def filter_value(value: str) -> str:
    """``value`` as a string literal of an MLflow search filter (``search_runs``, ``search_model_versions``).

    MLflow's filter grammar has no escape character: a value is quoted with whichever quote it lacks.

    :param value: a model name, run id or tag value.
    :raises ValueError: the value holds both kinds of quote, so no filter can name it.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both ' and \", so MLflow's search filters cannot name it; rename it")


class AliasNotSetError(LookupError):
    """The model has no version with the alias yet (e.g. no champion before the first promotion)."""


def alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or ``None`` when the alias (or the model) does not exist.

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    """
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def aliased_tag(client: MlflowClient, model_name: str, alias: str, tag: str) -> tuple[str | None, str | None]:
    """The version ``alias`` points at and that version's ``tag`` (``None`` for either when missing).

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    :param tag: a tag key of :class:`Tag`.
    """
    version = alias_version(client, model_name, alias)
    if version is None:
        return None, None
    return version, client.get_model_version(model_name, version).tags.get(tag) or None
