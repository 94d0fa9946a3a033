"""Speed of the thesis' Monte-Carlo GA: the vectorised sga against PyGMO's, per repetition.

Setting of thesis Table 4.3: 3-d Rastrigin grid (100 points an axis), tau
0.75, 1,000 generations read at 10, 100 and 1,000. The vectorised GA runs
the table's 1,000 repetitions at once; PyGMO runs a few, one at a time.
"""

from __future__ import annotations

import pytest

from harness.genetic import NoisyRastrigin, run_ga, run_pygmo_sga
from harness.rastrigin import RastriginGrid

GENERATIONS = (10, 100, 1000)


@pytest.fixture(scope="module")
def grid():
    grid = RastriginGrid(3, 100)
    grid.noise_scale(0.75)  # calibrate once, outside the timings
    return grid


def _per_repetition(benchmark, repetitions):
    benchmark.extra_info["repetitions"] = repetitions
    benchmark.extra_info["seconds_per_repetition"] = benchmark.stats.stats.mean / repetitions


def test_vectorised_ga_table4_3_setting(benchmark, grid):
    fitness = NoisyRastrigin(grid, 0.75, 1000)
    result = benchmark.pedantic(run_ga, args=(grid, fitness, GENERATIONS), rounds=2, iterations=1)
    assert result.top_fraction.shape == (3, 1000)
    _per_repetition(benchmark, 1000)


def test_pygmo_sga_table4_3_setting(benchmark, grid):
    pytest.importorskip("pygmo")
    fitness = NoisyRastrigin(grid, 0.75, 5)
    result = benchmark.pedantic(run_pygmo_sga, args=(fitness, GENERATIONS), rounds=2, iterations=1)
    assert result.top_fraction.shape == (3, 5)
    _per_repetition(benchmark, 5)
