"""Evidently 0.7's column drift tests, computed once per column from sorted samples.

Each test reproduces ``evidently.legacy.calculations.stattests`` (the code behind ``ValueDrift`` and
``DataDriftPreset``): the same statistic, binning, default threshold and comparison direction, and the
same default choice of test by column kind, reference row count and distinct-value count. Numeric
columns are sorted once; the two-sample KS statistic, the Wasserstein distance, distinct counts and
histograms all come from the two sorted arrays and their stable merge, instead of Evidently's
per-test ``searchsorted`` passes over the unsorted data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from airflow_mlops_provider.core.drift.methods import CATEGORICAL, NUMERIC, Kind

#: Reference row count up to which Evidently picks the small-sample tests (KS, chi-square, Z).
SMALL_SAMPLE_ROWS = 1000
#: Above this many rows in either sample scipy's ``ks_2samp`` switches from the exact to the asymptotic p-value.
KS_EXACT_MAX_ROWS = 10_000
#: From this effective sample size on, the KS p-value's exact Smirnov sum is vectorized (below, scipy's loop
#: takes under 15 ms and its result is kept bit for bit).
SMIRNOV_VECTORIZED_MIN_N = 10_000
#: A numeric reference with more distinct values than this is binned into a Sturges histogram (PSI, JS).
HISTOGRAM_MIN_DISTINCT = 20


class Sample:
    """The cleaned values of one column in the reference and the current frame."""

    kind: Kind
    n_reference: int
    n_current: int

    def distinct(self, limit: int) -> int:
        """The number of distinct values over both frames, exact up to ``limit`` (above it, some larger number).

        :param limit: the largest count that must be exact.
        """
        raise NotImplementedError

    def value_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sorted distinct values over both frames, and their counts in the reference and the current."""
        raise NotImplementedError

    def percents(self) -> tuple[np.ndarray, np.ndarray]:
        """Evidently's ``get_binned_data`` shares (before zero filling): value shares, or histogram shares."""
        _, ref, cur = self.value_counts()
        return ref / self.n_reference, cur / self.n_current


class NumericSample(Sample):
    """A numeric column: its finite values as float64, sorted once.

    :param reference: the reference values as float64, in any order; NaN and infinities are dropped.
    :param current: the current values, likewise.
    """

    kind = NUMERIC

    def __init__(self, reference: np.ndarray, current: np.ndarray) -> None:
        self.ref_sorted = _sorted_finite(reference)
        self.cur_sorted = _sorted_finite(current)
        self.n_reference = len(self.ref_sorted)
        self.n_current = len(self.cur_sorted)

    @cached_property
    def _ref_distinct(self) -> np.ndarray:
        return _distinct_sorted(self.ref_sorted)

    @cached_property
    def _cur_distinct(self) -> np.ndarray:
        return _distinct_sorted(self.cur_sorted)

    def distinct(self, limit: int) -> int:
        """See :meth:`Sample.distinct`; evenly spaced order statistics settle a many-valued column without
        a pass over the data, and the union is formed only when both sides are small."""
        for side in (self.ref_sorted, self.cur_sorted):
            spaced = side[np.linspace(0, len(side) - 1, num=limit + 2).astype(np.intp)] if len(side) else side
            if _count_distinct_sorted(spaced) > limit:
                return _count_distinct_sorted(spaced)
        ref, cur = self._ref_distinct, self._cur_distinct
        if max(len(ref), len(cur)) > limit:
            return max(len(ref), len(cur))
        return len(np.union1d(ref, cur))

    def value_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """See :meth:`Sample.value_counts`."""
        keys = np.union1d(self._ref_distinct, self._cur_distinct)
        return keys, _counts_at(self.ref_sorted, keys), _counts_at(self.cur_sorted, keys)

    def percents(self) -> tuple[np.ndarray, np.ndarray]:
        """Histogram shares on Sturges bins of both samples when the reference has many distinct values."""
        if len(self._ref_distinct) <= HISTOGRAM_MIN_DISTINCT:
            return super().percents()
        edges = np.histogram_bin_edges(np.concatenate([self.ref_sorted, self.cur_sorted]), bins="sturges")
        return (
            _histogram_sorted(self.ref_sorted, edges) / self.n_reference,
            _histogram_sorted(self.cur_sorted, edges) / self.n_current,
        )

    @cached_property
    def _merged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both samples merged in order: the values, and how many reference / current values are at or before each."""
        both = np.concatenate([self.ref_sorted, self.cur_sorted])
        order = np.argsort(both, kind="stable")  # a linear merge of two sorted runs
        ref_seen = np.cumsum(order < self.n_reference)
        cur_seen = np.arange(1, len(both) + 1) - ref_seen
        return both[order], ref_seen, cur_seen

    def ks_statistic(self) -> float:
        """The two-sided KS statistic, evaluated like scipy's ``ks_2samp`` at each distinct value."""
        values, ref_seen, cur_seen = self._merged
        last_of_value = np.append(values[1:] != values[:-1], True)
        diffs = ref_seen[last_of_value] / self.n_reference - cur_seen[last_of_value] / self.n_current
        return float(max(diffs.max(), -diffs.min()))

    def wasserstein(self) -> float:
        """The Wasserstein-1 distance, summed like scipy's ``wasserstein_distance``."""
        values, ref_seen, cur_seen = self._merged
        gaps = ref_seen[:-1] / self.n_reference
        np.subtract(gaps, cur_seen[:-1] / self.n_current, out=gaps)
        return float(np.vecdot(np.abs(gaps, out=gaps), np.diff(values)))


class CategoricalSample(Sample):
    """A categorical column, reduced to counts per category.

    :param reference: the reference values without missing values.
    :param current: the current values, likewise.
    """

    kind = CATEGORICAL

    def __init__(self, reference: pd.Series, current: pd.Series) -> None:
        self.n_reference = len(reference)
        self.n_current = len(current)
        table = pd.concat([reference.value_counts(), current.value_counts()], axis=1, keys=["ref", "cur"]).fillna(0)
        table = table[(table["ref"] > 0) | (table["cur"] > 0)]  # a categorical dtype lists unused categories
        try:
            table = table.sort_index()
        except TypeError:  # mixed, unorderable categories
            table = table.sort_index(key=lambda index: index.map(repr))
        self._keys = table.index.to_numpy()
        self._ref_counts = table["ref"].to_numpy(dtype=np.int64)
        self._cur_counts = table["cur"].to_numpy(dtype=np.int64)

    def distinct(self, limit: int) -> int:
        """See :meth:`Sample.distinct` (always exact here)."""
        return len(self._keys)

    def value_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """See :meth:`Sample.value_counts`."""
        return self._keys, self._ref_counts, self._cur_counts


def default_method(sample: Sample) -> str:
    """Evidently's default test for a column: by kind, reference rows and distinct values.

    :param sample: the column's cleaned values.
    """
    distinct = sample.distinct(limit=5)
    numeric_many = sample.kind == NUMERIC and distinct > 5
    if sample.n_reference <= SMALL_SAMPLE_ROWS:
        if numeric_many:
            return "ks"
        return "chisquare" if distinct > 2 else "z"
    return "wasserstein" if numeric_many else "jensenshannon"


def ks_pvalue(sample: Sample) -> float:
    """The two-sided KS p-value: scipy's exact test for small samples, Smirnov's asymptotic one above.

    :param sample: a numeric column.
    """
    assert isinstance(sample, NumericSample)
    n1, n2 = sample.n_reference, sample.n_current
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:
        return float(stats.ks_2samp(sample.ref_sorted, sample.cur_sorted).pvalue)
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(kstwo_sf(sample.ks_statistic(), int(np.round(m * n / (m + n)))), 0, 1))


def kstwo_sf(statistic: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(statistic, n)``, with its costly branch computed in one vectorized pass.

    For ``2.2 <= n * statistic**2 < 370`` scipy returns twice the one-sided exact Smirnov probability,
    summed term by term in a scalar loop of about ``n`` steps (0.8 s at ``n = 500 000``). From
    :data:`SMIRNOV_VECTORIZED_MIN_N` on, :func:`smirnov_sf` sums the same terms with numpy (equal to
    scipy's within 1e-12, relative). Every other case is scipy's.

    :param statistic: the two-sided KS statistic, in ``[0, 1]``.
    :param n: the (effective) sample size.
    """
    t = n * statistic
    if n >= SMIRNOV_VECTORIZED_MIN_N and 1 < t < n - 1 and statistic < 0.5 and 2.2 <= t * statistic < 370:
        return float(np.clip(2 * smirnov_sf(n, statistic), 0, 1))
    return float(stats.kstwo.sf(statistic, n))


def smirnov_sf(n: int, x: float) -> float:
    """The one-sided KS survival function ``P(D+_n >= x)``, as ``scipy.special.smirnov(n, x)``.

    Birnbaum and Tingey's exact sum, ``x * sum_j C(n, j) (1 - x - j/n)**(n - j) (x + j/n)**(j - 1)``
    over ``j <= n (1 - x)``, whose terms are binomial probabilities ``pmf(j; n, x + j/n) / (x + j/n)``:
    scipy's binomial pmf keeps each term accurate to about 1e-15 even for large ``n``.

    :param n: the sample size.
    :param x: the statistic, in ``(0, 1)``.
    """
    j = np.arange(int(np.floor(n * (1 - x))) + 1, dtype=np.float64)
    p = x + j / n
    return float(x * np.sum(stats.binom.pmf(j, n, p) / p))


def wasserstein_normed(sample: Sample) -> float:
    """The Wasserstein distance divided by the reference's standard deviation (at least 0.001).

    :param sample: a numeric column.
    """
    assert isinstance(sample, NumericSample)
    norm = max(float(np.std(sample.ref_sorted)), 0.001)
    return sample.wasserstein() / norm


def psi(sample: Sample) -> float:
    """The population stability index over Evidently's bins, empty bins filled with a tiny share.

    :param sample: a numeric or categorical column.
    """
    ref, cur = (_fill_zeroes(share) for share in sample.percents())
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def jensenshannon(sample: Sample) -> float:
    """The Jensen-Shannon distance (natural log) over Evidently's bins.

    :param sample: a numeric or categorical column.
    """
    ref, cur = sample.percents()
    return float(distance.jensenshannon(ref, cur))


def chisquare_pvalue(sample: Sample) -> float:
    """Pearson's chi-square p-value of the current counts against the reference counts, rescaled.

    :param sample: a column of few values.
    """
    _, ref, cur = sample.value_counts()
    expected = ref * (sample.n_current / sample.n_reference)
    with np.errstate(divide="ignore", invalid="ignore"):  # a category new in current: p-value 0, as in scipy
        return float(stats.chisquare(cur, expected).pvalue)


def z_pvalue(sample: Sample) -> float:
    """The two-proportion Z-test p-value on the share of the first (sorted) value; 1 if both are constant.

    :param sample: a column of at most two values.
    """
    keys, ref, cur = sample.value_counts()
    if len(keys) == 1:
        return 1.0
    n1, n2 = sample.n_reference, sample.n_current
    p1 = float(n1 - ref[0]) / n1
    p2 = float(n2 - cur[0]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(abs(z))))


SCORERS: dict[str, Callable[[Sample], float]] = {
    "ks": ks_pvalue,
    "wasserstein": wasserstein_normed,
    "psi": psi,
    "jensenshannon": jensenshannon,
    "chisquare": chisquare_pvalue,
    "z": z_pvalue,
}


def _sorted_finite(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, without NaN (sorted last) and infinities (sorted first and last)."""
    ordered = np.sort(values)
    if len(ordered) and not (np.isfinite(ordered[0]) and np.isfinite(ordered[-1])):
        start = np.searchsorted(ordered, -np.inf, side="right")
        ordered = ordered[start : np.searchsorted(ordered, np.inf, side="left")]
    return ordered


def _count_distinct_sorted(values: np.ndarray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    return values[np.append(True, values[1:] != values[:-1])]


def _counts_at(sorted_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """How often each key occurs in ``sorted_values``."""
    return np.searchsorted(sorted_values, keys, side="right") - np.searchsorted(sorted_values, keys, side="left")


def _histogram_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted values: half-open bins, the last one closed."""
    bounds = np.searchsorted(sorted_values, edges, side="left")
    bounds[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    return np.diff(bounds)


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Replace empty-bin shares like Evidently: by the smallest share / 1e6 if it is <= 1e-4, else by 1e-4."""
    smallest = min(shares[shares != 0])
    return np.where(shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, shares)
