"""Rank noise with a set Kendall tau, and counter-based random numbers.

Two ways to inject noise so that Kendall's tau-b between noisy and clean
values equals a target:

* :class:`GaussianCopula` — for continuous values. Values are mapped to
  standard-normal scores through their empirical CDF on a reference sample,
  mixed with independent normal noise at correlation ``rho``, and mapped
  back. For a bivariate normal, ``tau = (2/pi) * arcsin(rho)`` (Greiner's
  relation), and tau is invariant under the monotone maps, so the noisy
  values have exactly the target tau in the population and the same
  marginal distribution as the clean ones.
* :func:`calibrate_scale` — for values with ties (a Rastrigin grid is
  symmetric), where Greiner's relation does not hold: bisection on the scale
  of additive noise until the sample tau-b hits the target.

Noise must not depend on which other cells are in a batch, so per-item
normals come from hashing integer keys (:func:`hashed_normals`), not from a
sequential generator.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import special, stats

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser applied elementwise to a uint64 array (wrapping arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hash_rows(codes: np.ndarray, *salts: int) -> np.ndarray:
    """A uint64 hash per row of an integer array ``(n, k)`` (or per item of ``(n,)``), mixed with ``salts``."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    h = np.full(codes.shape[0], 0x243F6A8885A308D3, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for salt in salts:
            h = splitmix64(h ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))
        for j in range(codes.shape[1]):
            h = splitmix64(h ^ codes[:, j].astype(np.uint64))
    return h


def normals_from_hash(hashes: np.ndarray, *salts: int) -> np.ndarray:
    """Standard normal draws, one per uint64 hash, for the stream named by ``salts``.

    Hash the cells once with :func:`hash_rows`, then draw every independent
    stream (accuracy noise, time noise, ...) from it with its own salts.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for salt in salts:
            h = splitmix64(h ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))
    uniform = ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # 53 random bits
    return special.ndtri(uniform)


def hashed_normals(codes: np.ndarray, *salts: int) -> np.ndarray:
    """Standard normal draws, one per row of ``codes``, fixed by the row's values and ``salts``."""
    return normals_from_hash(hash_rows(codes), *salts)


def rho_for_tau(tau: float) -> float:
    """Pearson correlation of a bivariate normal whose Kendall tau is ``tau`` (Greiner)."""
    check_tau(tau, "tau")
    return math.sin(math.pi * tau / 2.0)


def tau_for_rho(rho: float) -> float:
    """Kendall tau of a bivariate normal with correlation ``rho``."""
    return 2.0 / math.pi * math.asin(rho)


def check_tau(tau: float, name: str) -> None:
    """Raise ``ValueError`` unless ``tau`` is a real number with ``0 < tau <= 1`` (``True`` is not a number)."""
    if isinstance(tau, (bool, np.bool_)) or not (isinstance(tau, (int, float, np.integer, np.floating))
                                               and 0.0 < tau <= 1.0):
        raise ValueError(f"{name} must be a real number in (0, 1], got {tau!r}")


class GaussianCopula:
    """Maps values to standard-normal scores and back through a reference sample's CDF.

    Between the reference minimum and maximum the CDF is interpolated
    linearly; beyond them it continues with the slope of the outermost
    tenth of the sample, so the map stays strictly increasing everywhere
    (no ties are created for values outside the sample). For speed, both
    directions are tabulated once on a uniform grid and then read by
    index arithmetic instead of a binary search per value.

    By default the reference's distinct values are spread evenly (a sample of a continuous
    quantity, where ties are accidents). With ``population=True`` the reference is the whole
    population and its ties are real (NAS-Bench-201's 15,625 accuracies take 5,735 values): each
    distinct value keeps its share of the population and sits at its mid-rank, so the population's
    normal scores are standard normal up to the ties and Greiner's relation holds for it (see
    ``backends.nb201``). Without ties both give the same map.
    """

    _GRID = 1 << 16

    def __init__(self, reference: np.ndarray, *, population: bool = False) -> None:
        ref, counts = np.unique(np.asarray(reference, dtype=np.float64), return_counts=True)
        if len(ref) < 10:
            raise ValueError(f"a copula needs at least 10 distinct reference values, got {len(ref)}")
        n = len(ref)
        if population:
            z = special.ndtri((np.cumsum(counts) - counts / 2.0) / counts.sum())
        else:
            z = special.ndtri((np.arange(n) + 0.5) / n)
        tail = max(n // 10, 1)
        span = ref[-1] - ref[0]
        # extend both ends linearly in normal-score space to +-8.5 sd
        low_slope = (z[tail] - z[0]) / max(ref[tail] - ref[0], 1e-12 * span)
        high_slope = (z[-1] - z[-1 - tail]) / max(ref[-1] - ref[-1 - tail], 1e-12 * span)
        knots_x = np.concatenate([[ref[0] - (z[0] + 8.5) / low_slope], ref,
                                  [ref[-1] + (8.5 - z[-1]) / high_slope]])
        knots_z = np.concatenate([[-8.5], z, [8.5]])
        self._x_grid = np.linspace(knots_x[0], knots_x[-1], self._GRID)
        self._z_of_x = np.interp(self._x_grid, knots_x, knots_z)
        self._z_grid = np.linspace(-8.5, 8.5, self._GRID)
        self._x_of_z = np.interp(self._z_grid, knots_z, knots_x)

    def to_normal(self, values: np.ndarray) -> np.ndarray:
        """Normal scores of ``values`` (increasing in ``values``, clamped to +-8.5)."""
        return _uniform_interp(values, self._x_grid, self._z_of_x)

    def from_normal(self, z: np.ndarray) -> np.ndarray:
        """Values whose normal scores are ``z`` (inverse of :meth:`to_normal`)."""
        return _uniform_interp(z, self._z_grid, self._x_of_z)


def _uniform_interp(values: np.ndarray, grid: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``np.interp(values, grid, table)`` for an evenly spaced ``grid``, without a search."""
    position = (np.asarray(values, dtype=np.float64) - grid[0]) * ((len(grid) - 1) / (grid[-1] - grid[0]))
    np.clip(position, 0.0, len(grid) - 1.000001, out=position)
    index = position.astype(np.intp)
    position -= index
    return table[index] + position * (table[index + 1] - table[index])


def mix(z: np.ndarray, noise: np.ndarray, rho: float) -> np.ndarray:
    """``rho * z + sqrt(1 - rho^2) * noise``: correlation ``rho`` with ``z`` for unit normals."""
    return rho * z + math.sqrt(max(0.0, 1.0 - rho * rho)) * noise


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b between two samples (scipy), as a float."""
    return float(stats.kendalltau(a, b).statistic)


def calibrate_scale(
    clean: np.ndarray,
    noise: np.ndarray,
    tau: float,
    tol: float = 1e-3,
    corrupt: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None,
) -> float:
    """Scale ``s`` of additive noise so that ``kendall_tau(clean + s * noise, clean) == tau``.

    Bisection in ``log s``; tau falls monotonically (up to sampling wobble)
    as ``s`` grows. ``corrupt(clean, noise, s)`` replaces the additive model
    when given. Returns the scale reaching ``tau`` within ``tol``, or the
    closest one found.
    """
    check_tau(tau, "tau")
    if tau >= 1.0:
        return 0.0
    corrupt = corrupt or (lambda c, n, s: c + s * n)
    spread = float(np.std(clean)) or 1.0
    low, high = 1e-6 * spread, 1e3 * spread
    best, best_err = high, math.inf
    for _ in range(60):
        mid = math.sqrt(low * high)
        got = kendall_tau(corrupt(clean, noise, mid), clean)
        err = abs(got - tau)
        if err < best_err:
            best, best_err = mid, err
        if err <= tol:
            break
        if got > tau:
            low = mid
        else:
            high = mid
    return best
