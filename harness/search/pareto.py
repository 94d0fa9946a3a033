"""Selection rules shared by the searches: top-K and the time-accuracy fronts POPNAS trains from.

Every rule is deterministic: candidates that tie keep their candidate order.
POPNAS picks its pool with one of :data:`FRONT_RULES` (:func:`front_mask`)
and trains the :func:`top_k` of the pool by predicted accuracy:

``"strict"`` (:func:`pareto_front`)
    the non-dominated set: no other candidate is at least as fast and at
    least as accurate, and better in one.
``"v1"`` (:func:`v1_front`)
    the sweep of the POPNAS v1 code, which keeps dominated candidates that
    tie in predicted time with a kept one (see :func:`v1_front`).
``"layered"`` (:func:`layered_front`)
    successive non-dominated layers (the front, then the front of the rest,
    ...) until the pool holds at least ``K`` candidates: one reading of the
    paper's "the Pareto front considered at most 256 best architectures".

Every rule decides on predictions rounded to a fixed grid
(:data:`~harness.resolution.ACCURACY_RESOLUTION`, :data:`~harness.resolution.TIME_RESOLUTION`), with
ties kept in candidate order (which is itself fixed by the previous steps' decisions):
:mod:`harness.resolution` says why.
"""

from __future__ import annotations

import numpy as np

from harness.resolution import ACCURACY_RESOLUTION, TIME_RESOLUTION, quantize
from harness.validation import check_integer

#: POPNAS's front rules, by the name ``POPNAS(front=...)`` takes.
FRONT_RULES: tuple[str, ...] = ("strict", "v1", "layered")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest ``scores``, best first, ranked on the
    :data:`ACCURACY_RESOLUTION` grid; ties keep candidate order.

    PNAS and POPNAS share this rule, so POPNAS with no time limit and no
    Pareto step makes exactly PNAS's choices.
    """
    order = np.argsort(-quantize(scores, ACCURACY_RESOLUTION), kind="stable")
    return order[:k]


def _check_points(time, accuracy) -> tuple[np.ndarray, np.ndarray]:
    """``time`` and ``accuracy`` as finite vectors of one length on their grids, or a clear error."""
    time = np.asarray(time, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if time.shape != accuracy.shape or time.ndim != 1:
        raise ValueError(f"time and accuracy must be 1-d of equal length, got {time.shape} and {accuracy.shape}")
    if not (np.isfinite(time).all() and np.isfinite(accuracy).all()):
        raise ValueError("time and accuracy must be finite to build a Pareto front")
    return quantize(time, TIME_RESOLUTION), quantize(accuracy, ACCURACY_RESOLUTION)


def pareto_front(time: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the candidates no other candidate dominates (faster-or-equal and
    at-least-as-accurate, better in one). Sort-and-sweep, O(n log n).

    Sorted by time (ascending) and, within equal times, accuracy
    (descending), a candidate is on the front when it is the most accurate
    of its time group and strictly more accurate than everything faster.
    Exact duplicates of a front point are all kept. Both objectives are
    compared on their grids, so near-equal predictions count as equal.
    """
    time, accuracy = _check_points(time, accuracy)
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


def v1_front(time: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the POPNAS v1 code's "Pareto front".

    POPNAS v1 (``AndreaFalanti/popnas`` at ``31ce4e5``, ``encoder.py``,
    ``ControllerManager.update_step``, the block after "sort the children
    according to their score") sorts the children by predicted accuracy,
    best first (Python's ``sorted(..., reverse=True)``, stable), keeps the
    first, and then keeps each child whose predicted time is ``<=`` that of
    the last child kept::

        front = [ranked[0]]
        for child in ranked[1:]:
            if child.time <= front[-1].time:
                front.append(child)

    The last kept time is the minimum time of everything ranked before
    (a skipped child was slower than it), so a child is kept exactly when
    no more accurate child -- and no equally accurate one earlier in
    candidate order -- is strictly faster: a running minimum, O(n log n).
    Unlike :func:`pareto_front`, a child that ties in time with a more
    accurate one stays (it is dominated), and so do equal-accuracy children
    that are slower than an earlier tie. Empty input gives an empty mask
    (the v1 loop fails on it).
    """
    time, accuracy = _check_points(time, accuracy)
    order = np.argsort(-accuracy, kind="stable")
    t = time[order]
    earlier_min = np.minimum.accumulate(np.r_[np.inf, t[:-1]]) if len(t) else t
    mask = np.zeros(len(time), bool)
    mask[order[t <= earlier_min]] = True
    return mask


def layered_front(time: np.ndarray, accuracy: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the first non-dominated layers holding at least ``k`` candidates together.

    Layer 1 is :func:`pareto_front`; layer ``j + 1`` is the front of what
    layers ``1 .. j`` left. Layers are added whole until ``k`` candidates
    are covered (or none is left), so the mask may hold more than ``k``;
    POPNAS then trains the ``k`` most accurate of it by prediction.
    """
    time, accuracy = _check_points(time, accuracy)
    check_integer("k", k)
    mask = np.zeros(len(time), bool)
    left = np.arange(len(time))
    while len(left) and mask.sum() < k:
        layer = pareto_front(time[left], accuracy[left])
        mask[left[layer]] = True
        left = left[~layer]
    return mask


def front_mask(rule: str, time: np.ndarray, accuracy: np.ndarray, k: int) -> np.ndarray:
    """The mask of front rule ``rule`` (one of :data:`FRONT_RULES`); ``k`` is used by ``"layered"``."""
    if rule == "strict":
        return pareto_front(time, accuracy)
    if rule == "v1":
        return v1_front(time, accuracy)
    if rule == "layered":
        return layered_front(time, accuracy, k)
    raise ValueError(f"unknown front rule {rule!r}; choose one of {FRONT_RULES}")
