"""The champion a live quality check judges: its version, run, problem type, label, and holdout score."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlops_provider.contracts import CHAMPION, ProblemType, RunParam, Tag
from airflow_mlops_provider.core.models.lineage import AliasNotSetError, alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class Champion:
    """The version in production and what its registry records say about it.

    :param model_name: the registered model.
    :param version: the champion version.
    :param run_id: its training run, if any.
    :param problem_type: from the run's params (``binary`` when unrecorded).
    :param target: the label column the run trained on, if recorded.
    :param holdout_metric: the metric of its promotion record, if any.
    :param holdout_score: its score on the trainer's holdout rows at promotion, if recorded.
    """

    model_name: str
    version: str
    run_id: str | None
    problem_type: str
    target: str | None
    holdout_metric: str | None
    holdout_score: float | None

    def holdout_score_in(self, metric: str) -> float | None:
        """The holdout score when it was measured in ``metric``, else ``None``.

        :param metric: the live metric.
        """
        return self.holdout_score if self.holdout_metric == metric else None


def find_champion(client: MlflowClient, model_name: str, alias: str = CHAMPION) -> Champion:
    """The version ``alias`` points at, with its promotion record (:attr:`Tag.PROMOTION`, whose
    ``challenger_score`` is the version's holdout score in its ``metric``) and its run's params.

    :param client: an MLflow client.
    :param model_name: the registered model.
    :param alias: the alias to follow.
    :raises AliasNotSetError: no version has the alias.
    """
    version = alias_version(client, model_name, alias)
    if version is None:
        raise AliasNotSetError(f"model {model_name!r} has no version aliased {alias!r}")
    model_version = client.get_model_version(model_name, version)
    params = client.get_run(model_version.run_id).data.params if model_version.run_id else {}
    metric, score = None, None
    record = model_version.tags.get(Tag.PROMOTION)
    if record:
        decided = json.loads(record)
        metric, score = decided.get("metric"), decided.get("challenger_score")
    if score is None and model_version.tags.get(Tag.PROMOTION_CHALLENGER_SCORE):
        score = float(model_version.tags[Tag.PROMOTION_CHALLENGER_SCORE])
    score = None if score is None or not math.isfinite(float(score)) else float(score)
    return Champion(
        model_name=model_name,
        version=version,
        run_id=model_version.run_id or None,
        problem_type=params.get(RunParam.PROBLEM_TYPE) or ProblemType.BINARY,
        target=params.get(RunParam.TARGET) or None,
        holdout_metric=metric,
        holdout_score=score,
    )
