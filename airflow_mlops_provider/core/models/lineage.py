"""A registered model version's lineage: the version an alias points at, and the training set behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops_provider.contracts import CHAMPION, RunParam, Split, Tag
from airflow_mlops_provider.core.drift.check import ReferenceSet

if TYPE_CHECKING:
    from mlflow import MlflowClient


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


def aliased_training_set(
    client: MlflowClient, model_name: str, alias: str = CHAMPION, split_value: str | None = Split.TRAIN
) -> ReferenceSet:
    """The training set of the version ``alias`` points at, with the model's features, target and split.

    The dataset comes from the version's tags :attr:`Tag.DATASET_URI` and :attr:`Tag.DATASET_DIGEST`;
    the features, target and split column from its run's params (:class:`RunParam`) when the run
    records them.

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    :param split_value: the rows of the split column to keep; ``None`` keeps all.
    :raises AliasNotSetError: no version has the alias.
    :raises LookupError: the version has no dataset tag.
    """
    version = alias_version(client, model_name, alias)
    if version is None:
        raise AliasNotSetError(f"model {model_name!r} has no version aliased {alias!r}")
    model_version = client.get_model_version(model_name, version)
    uri = model_version.tags.get(Tag.DATASET_URI)
    if not uri:
        raise LookupError(f"{model_name} version {version} has no {Tag.DATASET_URI} tag")
    params = client.get_run(model_version.run_id).data.params if model_version.run_id else {}
    features = [
        name.strip()
        for key in (RunParam.NUMERIC_FEATURES, RunParam.CATEGORICAL_FEATURES)
        for name in params.get(key, "").split(",")
        if name.strip()
    ]
    return ReferenceSet(
        uri=uri,
        digest=model_version.tags.get(Tag.DATASET_DIGEST) or None,
        features=tuple(features),
        target=params.get(RunParam.TARGET),
        split_column=params.get(RunParam.SPLIT_COLUMN, Split.COLUMN),
        split_value=split_value,
        model_name=model_name,
        model_version=version,
    )


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
