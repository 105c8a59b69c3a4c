"""What batch inference does with rows it cannot score: drop them (up to a fraction of all rows), fill them
with given values, or fail naming some. Light (no pandas at import): operators build it at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops_provider.contracts import Unscorable


class UnscorableError(ValueError):
    """The policy refuses the unscorable rows (``fail``, or more than ``max_fraction`` of them under ``drop``)."""


@dataclass(frozen=True)
class UnscorablePolicy:
    """What to do with rows that miss a feature value.

    :param action: :attr:`Unscorable.DROP`, :attr:`Unscorable.FILL` or :attr:`Unscorable.FAIL`.
    :param max_fraction: under ``drop``, fail when more than this fraction of all rows is unscorable.
    :param fill_values: under ``fill``, feature -> value; it must cover every feature of the model.
    :raises ValueError: an unknown action, a fraction outside [0, 1], ``fill`` without fill values, or fill
        values with another action.
    """

    action: str = Unscorable.DROP
    max_fraction: float = 0.05
    fill_values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in Unscorable.ALL:
            raise ValueError(f"unscorable must be one of {Unscorable.ALL}, not {self.action!r}")
        if not 0.0 <= self.max_fraction <= 1.0:
            raise ValueError(f"max_unscorable_fraction must be in [0, 1], got {self.max_fraction}")
        if self.action == Unscorable.FILL and not self.fill_values:
            raise ValueError("unscorable='fill' needs fill_values: a value for every feature of the model")
        if self.action != Unscorable.FILL and self.fill_values:
            raise ValueError(f"fill_values apply only to unscorable='fill', not {self.action!r}")

    def check_features(self, features: Sequence[str]) -> None:
        """Refuse ``fill`` values that do not cover ``features``, or that are null.

        :param features: the model's input features.
        :raises ValueError: naming the features without a fill value.
        """
        if self.action != Unscorable.FILL:
            return
        missing = [name for name in features if name not in self.fill_values]
        if missing:
            raise ValueError(
                f"fill_values lack the model's features {missing} (given: {sorted(self.fill_values)}); "
                "unscorable='fill' needs a value for every feature"
            )
        import pandas as pd

        null = [name for name in features if pd.isna(self.fill_values[name])]
        if null:
            raise ValueError(f"fill_values are null for {null}: a fill value must be a value")

    def enforce(self, unscorable: int, rows: int) -> None:
        """Fail when the ``drop`` cap is exceeded.

        :param unscorable: unscorable rows, over the whole input.
        :param rows: all rows.
        :raises UnscorableError: more than ``max_fraction`` of ``rows`` under ``drop``.
        """
        if self.action == Unscorable.DROP and rows and unscorable / rows > self.max_fraction:
            raise UnscorableError(
                f"{unscorable} of {rows} rows ({unscorable / rows:.2%}) are unscorable (an unknown entity or a "
                f"missing feature value); unscorable='drop' allows at most {self.max_fraction:.2%}"
            )
