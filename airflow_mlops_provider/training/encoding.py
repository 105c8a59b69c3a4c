"""Feature preprocessing fitted on the training split and shipped inside the logged model.

Self-contained (numpy, pandas, json only, so the problem types are spelled out here) because the logged
model pickles this class by value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

OOV_INDEX = 0


@dataclass(frozen=True)
class FeatureEncoder:
    """Standardizes numeric features, indexes categories (0 = missing or unseen), scales the target.

    :param problem_type: ``binary`` or ``regression``.
    :param numeric: numeric feature names.
    :param means: training mean per numeric feature.
    :param stds: training standard deviation per numeric feature (1 where constant).
    :param categorical: categorical feature names.
    :param vocabularies: sorted training categories per categorical feature; index ``i`` encodes as ``i + 1``.
    :param target_mean: training target mean (regression; 0 for binary).
    :param target_std: training target standard deviation (regression; 1 for binary).
    """

    problem_type: str
    numeric: list[str]
    means: list[float]
    stds: list[float]
    categorical: list[str]
    vocabularies: list[list[str]]
    target_mean: float = 0.0
    target_std: float = 1.0

    @classmethod
    def fit(
        cls, train: pd.DataFrame, problem_type: str, numeric: list[str], categorical: list[str], target: str
    ) -> FeatureEncoder:
        """Fit on the training rows.

        :param train: training rows.
        :param problem_type: ``binary`` or ``regression``.
        :param numeric: numeric feature names.
        :param categorical: categorical feature names.
        :param target: label column.
        """
        values = train[numeric].to_numpy(dtype=np.float64)
        stds = values.std(axis=0) if numeric else np.array([])
        vocabularies = [sorted(set(_as_str(train[c]).dropna())) for c in categorical]
        y = train[target].to_numpy(dtype=np.float64)
        regression = problem_type == "regression"
        return cls(
            problem_type=problem_type,
            numeric=list(numeric),
            means=values.mean(axis=0).tolist() if numeric else [],
            stds=np.where(stds > 0, stds, 1.0).tolist(),
            categorical=list(categorical),
            vocabularies=vocabularies,
            target_mean=float(y.mean()) if regression else 0.0,
            target_std=(float(y.std()) or 1.0) if regression else 1.0,
        )

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table size per categorical feature, including the out-of-vocabulary index."""
        return [len(vocab) + 1 for vocab in self.vocabularies]

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Turn raw features into ``(numeric float32 [n, n_num], categories int64 [n, n_cat])``.

        :param df: raw feature frame; extra columns are ignored.
        :raises ValueError: missing feature columns, or NaN/infinite numeric values.
        """
        missing = [c for c in [*self.numeric, *self.categorical] if c not in df.columns]
        if missing:
            raise ValueError(f"input is missing feature columns {missing}")
        values = df[self.numeric].to_numpy(dtype=np.float64).reshape(len(df), len(self.numeric))
        bad = [c for c, ok in zip(self.numeric, np.isfinite(values).all(axis=0), strict=True) if not ok]
        if bad:
            raise ValueError(f"numeric features have NaN or infinite values: {bad}")
        numeric = ((values - np.asarray(self.means)) / np.asarray(self.stds)).astype(np.float32)
        codes = [
            pd.Categorical(_as_str(df[c]), categories=vocab).codes.astype(np.int64) + 1
            for c, vocab in zip(self.categorical, self.vocabularies, strict=True)
        ]
        categories = np.stack(codes, axis=1) if codes else np.zeros((len(df), 0), dtype=np.int64)
        return numeric, categories

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        """Map raw targets to the network's training scale.

        :param y: raw target values.
        """
        return ((np.asarray(y, dtype=np.float64) - self.target_mean) / self.target_std).astype(np.float32)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Map network outputs to predictions: P(class 1) for binary, the target value for regression.

        :param outputs: raw network outputs (logits or scaled values).
        """
        out = np.asarray(outputs, dtype=np.float64)
        if self.problem_type == "binary":
            return 0.5 * (1.0 + np.tanh(out / 2.0))  # the logistic function, without overflow
        return out * self.target_std + self.target_mean

    def to_json(self) -> str:
        """Serialize to JSON."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FeatureEncoder:
        """Deserialize from :meth:`to_json` output.

        :param text: the JSON text.
        """
        return cls(**json.loads(text))


def _as_str(series: pd.Series) -> pd.Series:
    """Categories as strings, keeping missing values missing."""
    return series.astype("string")
