"""Scores of a set of evaluated cells against a known answer, in (accuracy, cost): higher accuracy
and lower cost are better.

* :func:`hypervolume`: the area a set dominates, bounded by a reference
  point ``(reference_accuracy, reference_cost)``; only points more
  accurate and cheaper than the reference count. Exact, by a sort and a
  sweep over cost (O(n log n)); no library needed in two dimensions.
* :func:`true_front`: the cells of an exhaustive table that no other cell
  dominates (:func:`harness.search.pareto.pareto_front`, so on the same
  grid as the searches' decisions).
* :func:`front_recall`: the share of the true front's cells a set contains.
* :func:`best_under_budget`: the best accuracy among the cells whose cost
  is within each budget; with the table's own best, the budgeted regret.
* :func:`anytime_hypervolume`: the hypervolume of every prefix of an
  evaluation order (the anytime curve).
"""

from __future__ import annotations

import numpy as np

from harness.search.pareto import pareto_front


def _points(accuracy, cost, where: str) -> tuple[np.ndarray, np.ndarray]:
    accuracy = np.asarray(accuracy, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if accuracy.shape != cost.shape or accuracy.ndim != 1:
        raise ValueError(f"{where}: accuracy and cost must be 1-d of equal length, "
                         f"got {accuracy.shape} and {cost.shape}")
    if not (np.isfinite(accuracy).all() and np.isfinite(cost).all()):
        raise ValueError(f"{where}: accuracy and cost must be finite")
    return accuracy, cost


def hypervolume(accuracy, cost, reference: tuple[float, float]) -> float:
    """Area of the region dominated by the points and dominating ``reference = (accuracy, cost)``.

    Sorted by cost, point ``i`` contributes the strip from its cost to the
    next point's (the last one to ``reference_cost``) at the height of the
    best accuracy among the points up to ``i``, above ``reference_accuracy``.
    """
    accuracy, cost = _points(accuracy, cost, "hypervolume")
    ref_accuracy, ref_cost = (float(v) for v in reference)
    keep = (accuracy > ref_accuracy) & (cost < ref_cost)
    if not keep.any():
        return 0.0
    accuracy, cost = accuracy[keep], cost[keep]
    order = np.lexsort((-accuracy, cost))
    cost, height = cost[order], np.maximum.accumulate(accuracy[order]) - ref_accuracy
    widths = np.diff(np.append(cost, ref_cost))
    return float(np.sum(widths * height))


def anytime_hypervolume(accuracy, cost, reference: tuple[float, float]) -> np.ndarray:
    """``out[i]``: the hypervolume of the first ``i + 1`` points, in the given (evaluation) order."""
    accuracy, cost = _points(accuracy, cost, "anytime_hypervolume")
    out = np.empty(len(accuracy))
    # the front so far is all a prefix's hypervolume needs, and it stays small
    front_acc, front_cost = np.empty(0), np.empty(0)
    for i in range(len(accuracy)):
        front_acc, front_cost = np.append(front_acc, accuracy[i]), np.append(front_cost, cost[i])
        mask = pareto_front(front_cost, front_acc)
        front_acc, front_cost = front_acc[mask], front_cost[mask]
        out[i] = hypervolume(front_acc, front_cost, reference)
    return out


def true_front(accuracy, cost) -> np.ndarray:
    """Boolean mask of the non-dominated cells of an exhaustive table (ties on the front all kept)."""
    accuracy, cost = _points(accuracy, cost, "true_front")
    return pareto_front(cost, accuracy)


def front_recall(found_keys, front_keys) -> float:
    """Share of the true front's cells (``front_keys``) among ``found_keys``; 1 is all of them."""
    front = np.unique(np.asarray(front_keys))
    if len(front) == 0:
        raise ValueError("front_recall: the true front is empty")
    return float(np.isin(front, np.asarray(found_keys)).mean())


def best_under_budget(accuracy, cost, budgets) -> np.ndarray:
    """The best accuracy among the points with ``cost <= budget``, per budget (NaN where none is)."""
    accuracy, cost = _points(accuracy, cost, "best_under_budget")
    budgets = np.asarray(budgets, dtype=np.float64)
    order = np.argsort(cost, kind="stable")
    running = np.maximum.accumulate(accuracy[order]) if len(order) else np.empty(0)
    within = np.searchsorted(cost[order], budgets, side="right")
    return np.where(within > 0, running[np.maximum(within - 1, 0)] if len(order) else np.nan, np.nan)


__all__ = ["anytime_hypervolume", "best_under_budget", "front_recall", "hypervolume", "true_front"]
