"""Selection rules shared by the searches: top-K and the time-accuracy Pareto front.

Decisions are taken on predictions rounded to a fixed grid
(:data:`ACCURACY_RESOLUTION`, :data:`TIME_RESOLUTION`), with ties kept in
candidate order (which is itself fixed by the previous steps' decisions).
Why: the last bits of a prediction depend on the processor (vector kernels
of PyTorch, OpenBLAS and MKL differ between CPUs and between
``ATEN_CPU_CAPABILITY`` settings), and candidates that are exact ties on
paper (cells the predictor cannot tell apart, children with identical
time features) come out a few ulps apart in an order that then depends on
the machine. On the grid they are ties again and the tie-break decides,
the same everywhere. The grid is far finer than anything measurable, so
it never merges candidates a real measurement could order.
"""

from __future__ import annotations

import numpy as np

#: Grid of predicted accuracies (fractions) for ranking: 1e-9. An accuracy measured on a test set of
#: n images moves in steps of 1/n (1e-4 for CIFAR-10's 10,000), so 1e-9 merges nothing a measurement can
#: order; the float64 predictors' cross-processor differences are ~1e-15 (measured: at most 1.9e-15
#: between ATen's AVX-512 and default kernels), so a prediction lands on the other side of a grid
#: boundary with a probability of about 1e-6.
ACCURACY_RESOLUTION = 1e-9

#: Grid of predicted training times (in the time objective's unit, seconds for training backends) for the
#: Pareto front: 1e-6, a microsecond, a million times below the timing noise of any real training.
TIME_RESOLUTION = 1e-6


def quantize(values: np.ndarray, resolution: float) -> np.ndarray:
    """``values`` rounded to the nearest multiple of ``resolution`` (as float64 multiples)."""
    return np.rint(np.asarray(values, dtype=np.float64) / resolution)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest ``scores``, best first, ranked on the
    :data:`ACCURACY_RESOLUTION` grid; ties keep candidate order.

    PNAS and POPNAS share this rule, so POPNAS with no time limit and no
    Pareto step makes exactly PNAS's choices.
    """
    order = np.argsort(-quantize(scores, ACCURACY_RESOLUTION), kind="stable")
    return order[:k]


def pareto_front(time: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the candidates no other candidate dominates (faster-or-equal and
    at-least-as-accurate, better in one). Sort-and-sweep, O(n log n).

    Sorted by time (ascending) and, within equal times, accuracy
    (descending), a candidate is on the front when it is the most accurate
    of its time group and strictly more accurate than everything faster.
    Exact duplicates of a front point are all kept. Both objectives are
    compared on their grids (:data:`TIME_RESOLUTION`,
    :data:`ACCURACY_RESOLUTION`), so near-equal predictions count as equal.
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
    time, accuracy = quantize(time, TIME_RESOLUTION), quantize(accuracy, ACCURACY_RESOLUTION)
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
