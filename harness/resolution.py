"""The grids that predictions are decided and ranked on.

The last bits of a prediction depend on the processor: PyTorch, OpenBLAS and MKL pick other vector
kernels (and fused multiply-adds) on other CPUs and under other ``ATEN_CPU_CAPABILITY`` settings.
Candidates that tie on paper (cells a predictor cannot tell apart, such as two cells whose blocks
are the same multiset for the MLP's block mean, or children with identical time features) then come
out a few ulps apart, in an order that depends on the machine, and a top-K, a Pareto front or a rank
correlation that reads that order differs between machines. Rounded to a grid far finer than
anything measurable they are ties again, the same everywhere. Measured: on an Intel Sapphire Rapids
machine an MLP ensemble gave two such two-block cells predictions 1.1e-16 apart, which moved PNAS
Table 1's Spearman correlation by 1.8e-5 against the golden file written on an AMD EPYC.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

#: Grid of predicted accuracies (fractions): 1e-9. An accuracy measured on a test set of n images moves
#: in steps of 1/n (1e-4 for CIFAR-10's 10,000), so 1e-9 merges nothing a measurement can order; the
#: float64 predictors' cross-processor differences are ~1e-15 (measured: at most 1.9e-15 between
#: ATen's AVX-512 and default kernels), so a prediction lands on the other side of a grid boundary
#: with a probability of about 1e-6.
ACCURACY_RESOLUTION = 1e-9

#: Grid of predicted training times (in the time objective's unit, seconds for training backends) for
#: the fronts: 1e-6, a microsecond, a million times below the timing noise of any real training.
TIME_RESOLUTION = 1e-6


def quantize(values: np.ndarray, resolution: float) -> np.ndarray:
    """``values`` rounded to the nearest multiple of ``resolution``, as the multiples (float64)."""
    return np.rint(np.asarray(values, dtype=np.float64) / resolution)


def on_grid(values: np.ndarray, resolution: float) -> np.ndarray:
    """``values`` rounded to the nearest multiple of ``resolution``, as values: equal multiples give
    bit-identical floats on every machine (one correctly rounded product each)."""
    return quantize(values, resolution) * resolution


class OnGrid(RegressorMixin, BaseEstimator):
    """A scikit-learn regressor whose predictions are rounded to a grid (:func:`on_grid`).

    Wrap a model whose predictions are ranked (a top-K, a rank correlation) so that predictions tied
    on paper stay tied on every machine. ``fit`` fits a clone of ``estimator``.

    Parameters
    ----------
    estimator:
        any scikit-learn regressor (a pipeline, an ensemble).
    resolution:
        the grid's step, in the target's unit (:data:`ACCURACY_RESOLUTION` for accuracies).
    """

    def __init__(self, estimator: BaseEstimator, resolution: float = ACCURACY_RESOLUTION) -> None:
        self.estimator = estimator
        self.resolution = resolution

    def fit(self, X, y) -> "OnGrid":
        """Fit a clone of ``estimator`` on ``(X, y)``."""
        if not (np.isfinite(self.resolution) and self.resolution > 0):
            raise ValueError(f"OnGrid resolution must be a positive number, got {self.resolution!r}")
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X) -> np.ndarray:
        """The fitted estimator's predictions on the grid, as float64."""
        check_is_fitted(self, "estimator_")
        return on_grid(np.asarray(self.estimator_.predict(X), dtype=np.float64), self.resolution)


__all__ = ["ACCURACY_RESOLUTION", "OnGrid", "TIME_RESOLUTION", "on_grid", "quantize"]
