"""Rank agreement with bootstrap uncertainty (thesis chapter 5).

The thesis compares rankings with Kendall's tau-b, estimates its spread from
800 bootstrap resamples (reporting the standard error), and repeats the
comparison after rounding accuracies to whole percents, which merges near
ties that training noise would otherwise reorder. Every study reports its
correlations as a :class:`CorrelationEstimate`.

Speed: the resamples are evaluated together where that is exact and cheap.
A resample is summarised by its multiplicity vector ``w`` (how often each
original pair was drawn). Spearman's ranks follow from ``w`` by cumulative
sums over the sorted distinct values, with no per-resample sort. Kendall's
tau-b of a resample is a quadratic form in ``w``,
``sum_ij w_i w_j sign(dx_ij) sign(dy_ij) / 2`` over the original sign matrix,
which one matrix product evaluates for all resamples; that costs
``O(n_boot n^2)`` and beats scipy's ``O(n log n)`` per-resample routine up to
about two thousand pairs (measured on a 2-core CPU), beyond which scipy is
called per resample. Resamples are drawn in chunks to bound memory; the
chunking does not change the draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from harness.validation import check_integer

#: Correlation methods :func:`bootstrap_correlation` knows.
METHODS: tuple[str, ...] = ("kendall", "spearman")

#: Largest sample for which Kendall's resamples go through the quadratic form
#: (an ``n x n`` sign matrix); larger samples call scipy once per resample.
QUADRATIC_KENDALL_MAX_N = 2000

#: Resamples are drawn and evaluated in chunks of about this many drawn pairs, to bound memory.
_CHUNK_PAIRS = 1 << 22


@dataclass(frozen=True)
class CorrelationEstimate:
    """A rank correlation on a sample with its bootstrap standard error and percentile interval.

    ``value`` is computed on the full sample; ``std_error`` is the standard
    deviation of the bootstrap replicates and ``ci_low``/``ci_high`` their
    ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles. Replicates
    that are undefined (a resample constant in ``x`` or ``y``) are left out.
    """

    method: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    n: int
    n_boot: int
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, one table row."""
        return asdict(self)


def _check_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-d and of equal length, got shapes {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"a bootstrap correlation needs at least 3 pairs, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (found NaN or infinity)")
    return x, y


def _multiplicities(index: np.ndarray, n: int) -> np.ndarray:
    """``(n_boot, n)`` float counts: how often each original pair appears in each resample row."""
    n_boot = index.shape[0]
    counts = np.bincount((index + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    return counts.reshape(n_boot, n).astype(np.float64)


def _tie_groups(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample, the weight of each group of equal ``values`` (ascending), and each pair's group."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    new_group = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group_of_pair = np.empty(len(values), dtype=np.intp)
    group_of_pair[order] = np.cumsum(new_group) - 1
    group_weight = np.add.reduceat(counts[:, order], np.flatnonzero(new_group), axis=1)
    return group_weight, group_of_pair


def _tied_pairs(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per resample, the number of drawn pairs tied on ``values`` (a pair drawn twice is tied)."""
    group_weight, _ = _tie_groups(values, counts)
    return (group_weight * (group_weight - 1.0)).sum(axis=1) / 2.0


def _centred_ranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average rank, minus the mean rank, that each original pair's value has in each resample."""
    group_weight, group_of_pair = _tie_groups(values, counts)
    below = np.cumsum(group_weight, axis=1) - group_weight
    # average of ranks below+1 .. below+weight, centred on the mean rank (m + 1) / 2
    centred = below + (group_weight - counts.sum(axis=1, keepdims=True)) / 2.0
    return centred[:, group_of_pair]


def spearman_resamples(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Spearman's rho of every resample: row ``r`` of ``index`` lists the pairs drawn.

    Ranks come from the multiplicities (no per-row sort), and rho is the
    Pearson correlation of the ranks weighted by multiplicity.
    """
    counts = _multiplicities(index, len(x))
    rx, ry = _centred_ranks(x, counts), _centred_ranks(y, counts)
    cov = (counts * rx * ry).sum(axis=1)
    denom = np.sqrt((counts * rx * rx).sum(axis=1) * (counts * ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, cov / denom, np.nan)


def kendall_resamples(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Kendall's tau-b (scipy's definition) of every resample: row ``r`` of ``index`` lists the pairs."""
    n = len(x)
    if n > QUADRATIC_KENDALL_MAX_N:
        return np.array([stats.kendalltau(x[row], y[row]).statistic for row in index])
    counts = _multiplicities(index, n)
    signs = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    # concordant minus discordant pairs; pairs drawn twice have sign 0, like any tie
    numerator = np.einsum("bi,bi->b", counts @ signs, counts) / 2.0
    m = index.shape[1]
    total = m * (m - 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt((total - _tied_pairs(x, counts)) * (total - _tied_pairs(y, counts)))
        return np.where(denom > 0, numerator / denom, np.nan)


def _statistic(x: np.ndarray, y: np.ndarray, method: str) -> float:
    if method == "kendall":
        return float(stats.kendalltau(x, y).statistic)
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_correlation(
    x: np.ndarray,
    y: np.ndarray,
    method: str = "kendall",
    n_boot: int = 800,
    confidence: float = 0.95,
    seed: int = 0,
) -> CorrelationEstimate:
    """Rank correlation of ``x`` and ``y`` (Kendall's tau-b or Spearman's rho) with a bootstrap.

    Pairs are resampled with replacement ``n_boot`` times (800 in the
    thesis); the same ``seed`` gives the same estimate.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    check_integer("n_boot", n_boot, minimum=2)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x, y = _check_pairs(x, y)
    n = len(x)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_PAIRS // n)
    resample = kendall_resamples if method == "kendall" else spearman_resamples
    resampled = np.concatenate(
        [
            resample(x, y, rng.integers(0, n, size=(min(per_chunk, n_boot - start), n)))
            for start in range(0, n_boot, per_chunk)
        ]
    )
    return estimate_from_replicates(method, _statistic(x, y, method), resampled, n, confidence)


def estimate_from_replicates(method: str, value: float, replicates: np.ndarray, n: int,
                             confidence: float) -> CorrelationEstimate:
    """A :class:`CorrelationEstimate` from bootstrap replicates of ``value``.

    ``std_error`` is the replicates' sample standard deviation and the
    interval their percentile interval; undefined (NaN) replicates are left
    out, and fewer than two defined ones give NaN uncertainty.
    """
    finite = replicates[np.isfinite(replicates)]
    alpha = (1.0 - confidence) / 2.0
    if len(finite) >= 2:
        std_error = float(np.std(finite, ddof=1))
        ci_low, ci_high = (float(q) for q in np.quantile(finite, [alpha, 1.0 - alpha]))
    else:
        std_error = ci_low = ci_high = float("nan")
    return CorrelationEstimate(method=method, value=float(value), std_error=std_error, ci_low=ci_low,
                               ci_high=ci_high, n=int(n), n_boot=len(replicates),
                               confidence=float(confidence))


def round_to_percent(accuracy: np.ndarray) -> np.ndarray:
    """Accuracies (fractions in [0, 1]) rounded to whole percents, as the thesis does before ranking.

    Rounding merges accuracies closer than half a percent into ties, which
    Kendall's tau-b discounts. Halves round to even (numpy's rule).
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    finite = accuracy[np.isfinite(accuracy)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError(
            f"accuracies must be fractions in [0, 1], got values in [{finite.min()}, {finite.max()}] "
            "(percent values? divide by 100)"
        )
    return np.round(accuracy * 100.0) / 100.0


def correlation_table(rows: Iterable[tuple[Mapping[str, Any], CorrelationEstimate]]) -> pd.DataFrame:
    """A DataFrame with one row per ``(labels, estimate)``: the label columns, then the estimate's fields."""
    return pd.DataFrame([{**labels, **estimate.as_dict()} for labels, estimate in rows])


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample std, and the two-sided Student-t interval of the mean (NaN bounds for one value)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * std / np.sqrt(x.size)
    return mean, std, mean - half, mean + half
