"""The model a batch is scored with: one registry version, pinned, and the feature columns it takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.contracts import RunParam
from airflow_mlops_provider.core.models.lineage import AliasNotSetError, alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.pyfunc import PyFuncModel
    from mlflow.types import Schema


@dataclass(frozen=True)
class ModelInputs:
    """The feature columns a model takes, and how the signature wants their values typed.

    :param features: the input columns, in the order the model takes them.
    :param integers: columns the signature declares as integers (``long``/``integer``).
    :param floats: columns the signature declares as floating point (``double``/``float``).
    :param problem_type: ``binary`` or ``regression`` (the run's :attr:`RunParam.PROBLEM_TYPE`); ``None``
        when the run does not say.
    """

    features: tuple[str, ...]
    integers: frozenset[str] = frozenset()
    floats: frozenset[str] = frozenset()
    problem_type: str | None = None

    @classmethod
    def from_model(cls, params: Mapping[str, str], schema: Schema | None) -> ModelInputs:
        """The inputs from the training run's params (:attr:`RunParam.NUMERIC_FEATURES` and
        :attr:`RunParam.CATEGORICAL_FEATURES`), else from the signature's input names.

        :param params: the training run's params.
        :param schema: the model's input schema (``model.metadata.get_input_schema()``), if any.
        :raises ValueError: neither names a feature, or the run's features are not the signature's inputs.
        """
        from mlflow.types import DataType

        named = [
            name.strip()
            for key in (RunParam.NUMERIC_FEATURES, RunParam.CATEGORICAL_FEATURES)
            for name in params.get(key, "").split(",")
            if name.strip()
        ]
        types = schema.input_types_dict() if schema is not None and schema.has_input_names() else {}
        if named and types and set(named) != set(types):
            raise ValueError(
                f"the training run's features {sorted(named)} are not the model signature's inputs {sorted(types)}"
            )
        features = list(types) or named
        if not features:
            raise ValueError(
                f"the model names no input features: its run has no {RunParam.NUMERIC_FEATURES!r} or "
                f"{RunParam.CATEGORICAL_FEATURES!r} params and its signature no named inputs"
            )
        integers = {name for name, kind in types.items() if kind in (DataType.long, DataType.integer)}
        floats = {name for name, kind in types.items() if kind in (DataType.double, DataType.float)}
        return cls(tuple(features), frozenset(integers), frozenset(floats), params.get(RunParam.PROBLEM_TYPE) or None)


@dataclass(frozen=True)
class PinnedModel:
    """A registry version resolved once from an alias, loaded by its number (a later alias move cannot mix in).

    :param model_name: the registered model.
    :param version: the version the alias pointed at when resolved.
    :param model: the loaded pyfunc model.
    :param inputs: its input features.
    """

    model_name: str
    version: str
    model: PyFuncModel
    inputs: ModelInputs

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.model_name}/{self.version}"


def resolve_version(client: MlflowClient, model_name: str, alias: str) -> str:
    """The version ``alias`` points at now.

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param alias: e.g. ``champion``.
    :raises AliasNotSetError: no version has the alias (or there is no such model).
    """
    version = alias_version(client, model_name, alias)
    if version is None:
        raise AliasNotSetError(
            f"model {model_name!r} has no version aliased {alias!r}: promote a version first (nothing to score with)"
        )
    return version


def load_pinned(client: MlflowClient, model_name: str, version: str) -> PinnedModel:
    """Load ``models:/<model_name>/<version>`` with pyfunc, with the features its training run used.

    :param client: an MLflow client (its registry is the one ``mlflow.pyfunc`` loads from).
    :param model_name: the registered model.
    :param version: the version to load.
    :raises ValueError: the model's inputs cannot be told (see :meth:`ModelInputs.from_model`).
    """
    import mlflow.pyfunc

    run_id = client.get_model_version(model_name, version).run_id
    params: dict[str, Any] = dict(client.get_run(run_id).data.params) if run_id else {}
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    inputs = ModelInputs.from_model(params, model.metadata.get_input_schema())
    return PinnedModel(model_name, version, model, inputs)
