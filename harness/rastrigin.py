"""The Rastrigin function and the noisy grid of the thesis' Monte-Carlo study (chapters 4-5).

``f(x) = 10 d + sum_i (x_i^2 - 10 cos(2 pi x_i))`` on ``[-5.12, 5.12]^d``:
one global minimum ``f(0) = 0`` surrounded by a lattice of local minima,
the standard multimodal test landscape.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from harness.noise import calibrate_scale, check_tau

#: The usual Rastrigin domain bound.
BOUND = 5.12


def rastrigin(x: np.ndarray) -> np.ndarray:
    """Rastrigin value of every row of ``x`` (shape ``(..., d)``); 0 is the global minimum."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    terms = x * x - 10.0 * np.cos((2.0 * np.pi) * x)
    return 10.0 * x.shape[-1] + terms.sum(axis=-1, dtype=np.float64)


@dataclass(frozen=True)
class RastriginGrid:
    """A ``resolution^dims`` mesh over ``[-5.12, 5.12]^dims`` with clean and noisy Rastrigin values.

    Smaller is better. The thesis does not state its 3-d and 4-d grid
    resolution (its Fig. 5.4 shows 100 x 100 in 2-d), so ``resolution`` is a
    parameter that every table built on this grid reports.

    Noise is additive Gaussian, scaled so that Kendall's tau-b between noisy
    and clean values over the whole grid equals the target (the grid has
    ties by symmetry, so the scale is found by bisection, once per tau, on a
    draw fixed by ``calibration_seed``; each repetition then draws fresh
    noise at that scale).
    """

    dims: int
    resolution: int
    calibration_seed: int = 0

    def __post_init__(self) -> None:
        if self.dims < 1:
            raise ValueError(f"dims must be >= 1, got {self.dims}")
        if self.resolution < 2:
            raise ValueError(f"resolution must be >= 2, got {self.resolution}")
        if self.resolution**self.dims > 50_000_000:
            raise ValueError(
                f"a {self.resolution}^{self.dims} grid has {self.resolution**self.dims:,} points; "
                "lower the resolution (at most 50 million points)"
            )

    @property
    def size(self) -> int:
        """Number of grid points."""
        return self.resolution**self.dims

    @cached_property
    def axis(self) -> np.ndarray:
        """The ``resolution`` coordinates along each axis."""
        return np.linspace(-BOUND, BOUND, self.resolution)

    @cached_property
    def clean(self) -> np.ndarray:
        """Clean values, flat in C order: point ``i`` has axis indices ``np.unravel_index(i, shape)``."""
        per_axis = self.axis**2 - 10.0 * np.cos(2.0 * np.pi * self.axis)
        total = np.full((self.resolution,) * self.dims, 10.0 * self.dims)
        for k in range(self.dims):
            shape = [1] * self.dims
            shape[k] = self.resolution
            total = total + per_axis.reshape(shape)
        return total.ravel()

    @cached_property
    def _calibrated(self) -> dict:
        return {}

    def noise_scale(self, tau: float) -> float:
        """Standard deviation of the additive noise that gives Kendall tau-b ``tau`` on this grid."""
        check_tau(tau, "tau")
        if tau not in self._calibrated:
            noise = np.random.default_rng(self.calibration_seed).standard_normal(self.size)
            self._calibrated[tau] = calibrate_scale(self.clean, noise, tau)
        return self._calibrated[tau]

    def noisy(self, tau: float, seed: int) -> np.ndarray:
        """Noisy values at Kendall tau ``tau`` to the clean ones; ``tau=1`` returns the clean values."""
        if tau == 1.0:
            return self.clean.copy()
        scale = self.noise_scale(tau)
        return self.clean + scale * np.random.default_rng(seed).standard_normal(self.size)

    def top_fraction(self, index: np.ndarray) -> np.ndarray:
        """Fraction of all grid points strictly better (clean) than each point in ``index``."""
        ordered = np.sort(self.clean)
        return np.searchsorted(ordered, self.clean[np.asarray(index)], side="left") / self.size
