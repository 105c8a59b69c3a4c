"""Train/validation/holdout splits as a policy: one definition that the trainer, promotion and drift apply
alike, so the rows a model was held out on are the rows it is promoted on.

- ``column``: the dataset already has a split column (``train`` / ``validation`` / ``holdout``).
- ``temporal``: by a time column, the oldest rows train and the newest are held out.
- ``random``: a seeded shuffle, optionally stratified on a binary target.

A policy is JSON (:meth:`SplitPolicy.to_json`); the trainer records it on its run
(``RunParam.SPLIT_POLICY``), with the ``dataset_digest`` of the holdout rows it produced
(``Tag.HOLDOUT_DIGEST``), and promotion checks that it scores on those very rows.

Light at import time (numpy and pandas are imported when a policy is applied): DAG files build policies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from airflow_mlops_provider.contracts import Split

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMN, TEMPORAL, RANDOM = "column", "temporal", "random"
KINDS: Final = (COLUMN, TEMPORAL, RANDOM)


class SplitError(ValueError):
    """A policy that cannot split this dataset (a missing or invalid column, fractions out of range...)."""


@dataclass(frozen=True)
class SplitPolicy:
    """How a dataset's rows are assigned to ``train``, ``validation`` and ``holdout``.

    Build one with :meth:`existing`, :meth:`temporal_by` or :meth:`random_by`.

    :param kind: ``column``, ``temporal`` or ``random``.
    :param column: the split column: read (``column``) or written (the others).
    :param time_column: the time column of a ``temporal`` split.
    :param validation: the fraction of rows for validation (``temporal``, ``random``).
    :param holdout: the fraction of rows held out (``temporal``: the newest).
    :param seed: the shuffle's seed (``random``).
    :param stratify: keep the target's class balance in each split (``random``, binary targets).
    :raises SplitError: an invalid combination or value.
    """

    kind: str = COLUMN
    column: str = Split.COLUMN
    time_column: str | None = None
    validation: float = 0.15
    holdout: float = 0.15
    seed: int = 0
    stratify: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SplitError(f"split kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.column, str) or not self.column:
            raise SplitError(f"the split column must be a non-empty name, got {self.column!r}")
        if self.kind == TEMPORAL and not (isinstance(self.time_column, str) and self.time_column):
            raise SplitError("a temporal split needs time_column")
        if self.kind != TEMPORAL and self.time_column is not None:
            raise SplitError("time_column applies to a temporal split only")
        if self.kind == TEMPORAL and self.time_column == self.column:
            raise SplitError(f"the time column and the split column are both {self.column!r}")
        fractions = (self.validation, self.holdout)
        if not all(isinstance(f, int | float) and not isinstance(f, bool) for f in fractions) or not (
            self.validation >= 0 and self.holdout >= 0 and self.validation + self.holdout < 1
        ):
            raise SplitError(
                f"validation and holdout must be numbers >= 0 with a sum < 1, got {self.validation!r} and "
                f"{self.holdout!r}"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise SplitError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.stratify, bool):
            raise SplitError(f"stratify must be true or false, got {self.stratify!r}")
        if self.stratify and self.kind != RANDOM:
            raise SplitError("stratify applies to a random split only")

    @classmethod
    def existing(cls, column: str = Split.COLUMN) -> SplitPolicy:
        """The dataset's own split column.

        :param column: its name.
        """
        return cls(COLUMN, column)

    @classmethod
    def temporal_by(
        cls, time_column: str, validation: float = 0.15, holdout: float = 0.15, column: str = Split.COLUMN
    ) -> SplitPolicy:
        """By time: the oldest rows train, the newest are held out.

        :param time_column: the column to order by (stable: ties keep their order).
        :param validation: the fraction of rows for validation (the middle ones).
        :param holdout: the fraction of rows held out (the newest).
        :param column: the split column to write.
        """
        return cls(TEMPORAL, column, time_column, validation, holdout)

    @classmethod
    def random_by(
        cls,
        seed: int = 0,
        validation: float = 0.15,
        holdout: float = 0.15,
        stratify: bool = False,
        column: str = Split.COLUMN,
    ) -> SplitPolicy:
        """A seeded shuffle: the same seed and the same rows, in the same order, give the same split.

        :param seed: the seed.
        :param validation: the fraction of rows for validation.
        :param holdout: the fraction of rows held out.
        :param stratify: keep a binary target's class balance in each split.
        :param column: the split column to write.
        """
        return cls(RANDOM, column, None, validation, holdout, seed, stratify)

    @property
    def reads_column(self) -> bool:
        """Whether the split comes from the dataset's own column (kind ``column``)."""
        return self.kind == COLUMN

    def labels(self, df: pd.DataFrame, target: str | None = None) -> np.ndarray:
        """The split value of each row of ``df``, in row order.

        :param df: the dataset.
        :param target: the label column, for a stratified split.
        :raises SplitError: the policy cannot split ``df``.
        """
        import numpy as np

        if self.kind == COLUMN:
            if self.column not in df.columns:
                raise SplitError(
                    f"the dataset has no split column {self.column!r}: add one, or split it with a policy, "
                    "e.g. SplitPolicy.temporal_by('event_time') or SplitPolicy.random_by(seed=0)"
                )
            values = df[self.column].astype("string")
            unknown = sorted(set(values.dropna()) - set(Split.ALL))
            if unknown or values.isna().any():
                raise SplitError(
                    f"split column {self.column!r} must only hold {Split.ALL}; found {unknown or ['<missing>']}"
                )
            return np.asarray(values.to_numpy(dtype=object))
        if self.kind == TEMPORAL:
            return _by_position(self._time_order(df), self.validation, self.holdout)
        return self._random(df, target)

    def apply(self, df: pd.DataFrame, target: str | None = None) -> pd.DataFrame:
        """``df`` with the split column set (``column``: checked, not changed); row order is kept.

        :param df: the dataset.
        :param target: the label column, for a stratified split.
        :raises SplitError: the policy cannot split ``df``.
        """
        labels = self.labels(df, target)
        return df if self.kind == COLUMN else df.assign(**{self.column: labels})

    def partition(self, df: pd.DataFrame, target: str | None = None) -> dict[str, pd.DataFrame]:
        """The rows of each split (``Split.ALL`` keys), with ``df``'s own columns, in order, index reset.

        The ``holdout`` frame is what the trainer digests and promotion scores on: equal data and policy
        give an equal frame.

        :param df: the dataset.
        :param target: the label column, for a stratified split.
        :raises SplitError: the policy cannot split ``df``.
        """
        labels = self.labels(df, target)
        return {name: df[labels == name].reset_index(drop=True) for name in Split.ALL}

    def _time_order(self, df: pd.DataFrame) -> np.ndarray:
        """Row positions from the oldest to the newest (stable: ties keep their order)."""
        import pandas as pd

        assert self.time_column is not None  # checked at construction
        if self.time_column not in df.columns:
            raise SplitError(f"the dataset has no time column {self.time_column!r}")
        times = df[self.time_column].reset_index(drop=True)
        if times.isna().any():
            raise SplitError(f"time column {self.time_column!r} has {int(times.isna().sum())} missing values")
        if times.dtype == object or pd.api.types.is_string_dtype(times):
            try:  # text sorts as text: "2024-01-01T23:00-05:00" would come before "2024-01-02T01:00Z"
                times = pd.to_datetime(times, utc=True, format="ISO8601")
            except (ValueError, TypeError) as err:
                raise SplitError(f"time column {self.time_column!r} holds text, not ISO 8601 times: {err}") from err
        try:
            return times.sort_values(kind="stable").index.to_numpy()
        except TypeError as err:
            raise SplitError(f"time column {self.time_column!r} cannot be ordered: {err}") from err

    def _random(self, df: pd.DataFrame, target: str | None) -> np.ndarray:
        """Rows ranked by a seeded hash of their content, cut at the fractions (per class when stratified).

        A row's rank depends on its values and the seed, not on its position or on numpy's random
        generator: reordering the file changes no row's split, and a file with more rows moves only rows
        near the cut points, so a row a champion trained on is, but for those, never a later holdout row.
        """
        import numpy as np

        keys = _row_keys(df.drop(columns=[self.column], errors="ignore"), self.seed)
        if not self.stratify:
            return _by_position(_rank(keys), self.validation, self.holdout)
        if target is None or target not in df.columns:
            raise SplitError(f"a stratified split needs the target column, got {target!r}")
        labels = df[target]
        if labels.isna().any() or labels.nunique() != 2:
            raise SplitError(
                f"a stratified split needs a binary target without missing values; {target!r} has "
                f"{labels.nunique()} distinct values and {int(labels.isna().sum())} missing"
            )
        split = np.empty(len(df), dtype=object)  # each class split on its own, so each keeps its share
        for value in sorted(labels.unique()):
            rows = np.flatnonzero((labels == value).to_numpy())
            split[rows] = _by_position(_rank(keys[rows]), self.validation, self.holdout)
        return split

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-serializable data."""
        return asdict(self)

    def to_json(self) -> str:
        """The policy as compact, sorted JSON (an MLflow param, a CLI argument)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SplitPolicy:
        """Parse :meth:`to_json` output; fields left out take their defaults.

        :param text: the JSON object.
        :raises SplitError: not a policy, or an invalid one.
        """
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as err:
            raise SplitError(f"a split policy must be JSON, got {text!r} ({err})") from err
        if not isinstance(data, dict):
            raise SplitError(f"a split policy must be a JSON object, got {text!r}")
        try:
            return cls(**data)
        except TypeError as err:
            raise SplitError(f"not a split policy: {text!r} ({err})") from err


def _row_keys(df: pd.DataFrame, seed: int) -> np.ndarray:
    """A 64-bit key per row from its values (pandas' stable row hash) and ``seed`` (splitmix64 mixing)."""
    import numpy as np
    import pandas as pd

    keys = pd.util.hash_pandas_object(df, index=False).to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as the mixing intends
        z = keys + np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _rank(keys: np.ndarray) -> np.ndarray:
    """Row positions by ascending key; equal keys (duplicate rows) keep their order."""
    import numpy as np

    return np.argsort(keys, kind="stable")


def _by_position(order: np.ndarray, validation: float, holdout: float) -> np.ndarray:
    """Split values for rows ranked by ``order`` (``order[k]`` is the row at rank ``k``): the first ranks
    train, the last are held out."""
    import numpy as np

    n = len(order)
    n_holdout = round(n * holdout)
    n_train = n - n_holdout - round(n * validation)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    return np.where(
        position < n_train, Split.TRAIN, np.where(position < n - n_holdout, Split.VALIDATION, Split.HOLDOUT)
    ).astype(object)


def temporal_split(
    df: pd.DataFrame, by: str, validation: float = 0.15, holdout: float = 0.15, column: str = Split.COLUMN
) -> pd.DataFrame:
    """Return a copy of ``df`` with a ``column`` of ``train``, ``validation`` or ``holdout`` by time.

    :param df: the frame; its row order is kept.
    :param by: the column to order by (stable, so ties keep their order).
    :param validation: fraction of rows for validation.
    :param holdout: fraction of rows for the holdout (the newest).
    :param column: the name of the split column.
    :raises SplitError: fractions out of range, or no ``by`` column.
    """
    return SplitPolicy.temporal_by(by, validation, holdout, column).apply(df)
