"""An Asset event that a task emits only when it decides to: drift found, live quality decayed.

A plain ``Asset`` outlet receives an event on every successful run, so the task's outlet is an
``AssetAlias`` instead, and the event is added to it only when the task fires. Whether it fires is kept
in an episode state with the task instance as the *claimant*: a retry of the try that fired, killed
before Airflow recorded its event, fires again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


class ConditionalAssetEvent:
    """The alias outlet of ``asset`` (``<asset>__<when>``) and the one call that emits through it.

    :param asset: the asset that receives the event.
    :param when: what the event means, in the alias name, e.g. ``on_drift``.
    """

    def __init__(self, asset: Asset, when: str) -> None:
        self.asset = asset
        self.alias = AssetAlias(name=f"{asset.name}__{when}")

    def with_outlet(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """An operator's keyword arguments with the alias added to its ``outlets``.

        :param kwargs: the operator's ``BaseOperator`` arguments.
        """
        return {**kwargs, "outlets": [*kwargs.get("outlets", []), self.alias]}

    def emit(self, context: Context, extra: Mapping[str, Any]) -> None:
        """Emit the asset's event, with ``extra``, from the running task.

        :param context: the task's context.
        :param extra: the event's extra.
        """
        context["outlet_events"][self.alias].add(self.asset, extra=dict(extra))


def task_claimant(context: Context) -> str:
    """The task instance as the claimant of an episode decision: its retries share it, other runs and tasks do not.

    :param context: the task's context.
    """
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"
