"""A registered model version's training set, found through its lineage tags and its training run."""

from __future__ import annotations

from airflow_mlops_provider.core.drift_check import ReferenceSet
from airflow_mlops_provider.hooks.mlflow import MlflowHook

DATASET_URI_TAG = "mlops.dataset_uri"
DATASET_DIGEST_TAG = "mlops.dataset_digest"


class AliasNotSetError(LookupError):
    """The model has no version with the alias yet (e.g. no champion before the first promotion)."""


def aliased_training_set(
    hook: MlflowHook, model_name: str, alias: str = "champion", split_value: str | None = "train"
) -> ReferenceSet:
    """The training set of the version ``alias`` points at, with the model's features, target and split.

    The dataset comes from the version's tags ``mlops.dataset_uri`` and ``mlops.dataset_digest``; the
    features, target and split column from its run's params (``numeric_features``,
    ``categorical_features``, ``target``, ``split_column``) when the run records them.

    :param hook: the MLflow hook.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    :param split_value: the rows of the split column to keep; ``None`` keeps all.
    :raises AliasNotSetError: no version has the alias.
    :raises LookupError: the version has no ``mlops.dataset_uri`` tag.
    """
    version = hook.get_alias_version(model_name, alias)
    if version is None:
        raise AliasNotSetError(f"model {model_name!r} has no version aliased {alias!r}")
    client = hook.get_conn()
    model_version = client.get_model_version(model_name, version)
    uri = model_version.tags.get(DATASET_URI_TAG)
    if not uri:
        raise LookupError(f"{model_name} version {version} has no {DATASET_URI_TAG} tag")
    params = client.get_run(model_version.run_id).data.params if model_version.run_id else {}
    features = [
        name.strip()
        for key in ("numeric_features", "categorical_features")
        for name in params.get(key, "").split(",")
        if name.strip()
    ]
    return ReferenceSet(
        uri=uri,
        digest=model_version.tags.get(DATASET_DIGEST_TAG) or None,
        features=tuple(features),
        target=params.get("target"),
        split_column=params.get("split_column", "split"),
        split_value=split_value,
        model_name=model_name,
        model_version=version,
    )


def reference_set(
    reference_uri: str | None,
    model_name: str | None,
    alias: str = "champion",
    mlflow_conn_id: str = MlflowHook.default_conn_name,
    split_value: str | None = "train",
) -> ReferenceSet:
    """The explicit reference dataset if given, else the training set of ``model_name``'s ``alias`` version.

    :param reference_uri: an explicit reference dataset.
    :param model_name: the registered model whose aliased version's training set is the reference.
    :param alias: e.g. ``champion``.
    :param mlflow_conn_id: the ``mlflow`` connection.
    :param split_value: the rows of the split column to keep; ``None`` keeps all.
    :raises ValueError: neither ``reference_uri`` nor ``model_name`` is given.
    """
    if reference_uri:
        return ReferenceSet(uri=reference_uri, split_value=split_value, model_name=model_name)
    if not model_name:
        raise ValueError("give reference_uri, or model_name to compare with its champion's training set")
    return aliased_training_set(MlflowHook(mlflow_conn_id), model_name, alias, split_value)
