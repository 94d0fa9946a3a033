"""Selection rules shared by the searches: top-K and the time-accuracy Pareto front."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest ``scores``, best first; ties keep candidate order.

    PNAS and POPNAS share this rule, so POPNAS with no time limit and no
    Pareto step makes exactly PNAS's choices.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order[:k]


def pareto_front(time: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the candidates no other candidate dominates (faster-or-equal and
    at-least-as-accurate, better in one). Sort-and-sweep, O(n log n).

    Sorted by time (ascending) and, within equal times, accuracy
    (descending), a candidate is on the front when it is the most accurate
    of its time group and strictly more accurate than everything faster.
    Exact duplicates of a front point are all kept.
    """
    time = np.asarray(time, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if time.shape != accuracy.shape or time.ndim != 1:
        raise ValueError(f"time and accuracy must be 1-d of equal length, got {time.shape} and {accuracy.shape}")
    if not (np.isfinite(time).all() and np.isfinite(accuracy).all()):
        raise ValueError("time and accuracy must be finite to build a Pareto front")
    n = len(time)
    if n == 0:
        return np.zeros(0, bool)
    order = np.lexsort((-accuracy, time))
    t, a = time[order], accuracy[order]
    group_start = np.r_[True, t[1:] != t[:-1]]
    start_index = np.maximum.accumulate(np.where(group_start, np.arange(n), 0))
    best_of_group = a[start_index]
    running_max = np.maximum.accumulate(a)
    # best accuracy among strictly faster candidates: the running max just before the group
    faster_best = np.where(start_index > 0, running_max[np.maximum(start_index - 1, 0)], -np.inf)
    on_front = (a == best_of_group) & (a > faster_best)
    mask = np.zeros(n, bool)
    mask[order[on_front]] = True
    return mask
