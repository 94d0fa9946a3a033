"""Scores against a known front: hypervolume and the true front against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.nb201 import load_nb201_table
from harness.pareto_metrics import anytime_hypervolume, best_under_budget, front_recall, hypervolume, true_front
from harness.resolution import ACCURACY_RESOLUTION, TIME_RESOLUTION, quantize


def brute_force_hypervolume(accuracy, cost, reference):
    """Area of the union of the boxes [cost_i, ref_cost] x [ref_acc, acc_i], cell by cell of the
    grid the coordinates span (each grid cell is inside the union or outside it)."""
    ref_acc, ref_cost = reference
    xs = np.unique(np.clip(np.append(cost, ref_cost), None, ref_cost))
    ys = np.unique(np.clip(np.append(accuracy, ref_acc), ref_acc, None))
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs[:-1], xs[1:]), zip(ys[:-1], ys[1:])):
        # the grid cell's lower-right corner region is dominated when some point is cheaper and more accurate
        if np.any((cost <= x0) & (accuracy >= y1)):
            area += (x1 - x0) * (y1 - y0)
    return area


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), min_size=0, max_size=25),
       st.integers(0, 4), st.integers(6, 12))
def test_hypervolume_matches_brute_force_on_grids(points, ref_acc, ref_cost):
    # small integer grids force ties, duplicates and points beyond the reference
    accuracy = np.array([p[0] for p in points], float)
    cost = np.array([p[1] for p in points], float)
    assert hypervolume(accuracy, cost, (ref_acc, ref_cost)) == pytest.approx(
        brute_force_hypervolume(accuracy, cost, (ref_acc, ref_cost)), abs=1e-12)


def test_hypervolume_matches_brute_force_on_random_floats():
    rng = np.random.default_rng(0)
    for n in (1, 5, 40):
        accuracy, cost = rng.random(n), rng.random(n)
        reference = (0.1, 0.9)
        assert hypervolume(accuracy, cost, reference) == pytest.approx(
            brute_force_hypervolume(accuracy, cost, reference), rel=1e-12)


def test_hypervolume_of_one_point_and_of_nothing():
    assert hypervolume([0.8], [2.0], (0.5, 10.0)) == pytest.approx(0.3 * 8.0)
    assert hypervolume([0.4], [2.0], (0.5, 10.0)) == 0.0
    assert hypervolume([], [], (0.5, 10.0)) == 0.0
    with pytest.raises(ValueError, match="finite"):
        hypervolume([np.nan], [1.0], (0.0, 2.0))
    with pytest.raises(ValueError, match="equal length"):
        hypervolume([0.5, 0.6], [1.0], (0.0, 2.0))


def test_anytime_hypervolume_is_the_hypervolume_of_every_prefix():
    rng = np.random.default_rng(1)
    accuracy, cost = rng.random(30), rng.random(30)
    curve = anytime_hypervolume(accuracy, cost, (0.0, 1.0))
    expected = [hypervolume(accuracy[: i + 1], cost[: i + 1], (0.0, 1.0)) for i in range(30)]
    np.testing.assert_allclose(curve, expected, rtol=1e-12)
    assert (np.diff(curve) >= 0).all()


def test_best_under_budget_matches_a_scan():
    rng = np.random.default_rng(2)
    accuracy, cost = rng.random(50), rng.integers(0, 10, 50).astype(float)
    budgets = np.array([-1.0, 0.0, 3.0, 3.5, 9.0, 20.0])
    got = best_under_budget(accuracy, cost, budgets)
    for budget, value in zip(budgets, got):
        within = accuracy[cost <= budget]
        assert (np.isnan(value) and len(within) == 0) or value == within.max()


def test_front_recall():
    assert front_recall([1, 2, 3, 9], [2, 9, 11, 12]) == 0.5
    with pytest.raises(ValueError, match="empty"):
        front_recall([1], [])


@pytest.mark.parametrize("dataset, device", [("cifar10", "lat_gold_6226"), ("cifar100", "lat_pixel3")])
def test_true_front_matches_a_brute_force_scan_of_the_table(dataset, device):
    table = load_nb201_table().sort_values("key")
    raw_accuracy = table[f"{dataset}_test_acc_200ep"].to_numpy(np.float64) / 100
    raw_cost = table[device].to_numpy(np.float64)
    # compared on the searches' stated grids: the cells cut off from the input sit at chance accuracy
    # with float noise of ~1e-12 between them (e.g. 0.9999999997 % vs 1.0 % on CIFAR-100), ties on the grid
    accuracy, cost = quantize(raw_accuracy, ACCURACY_RESOLUTION), quantize(raw_cost, TIME_RESOLUTION)
    dominated = np.zeros(len(cost), bool)
    for start in range(0, len(cost), 1000):
        a, c = accuracy[start:start + 1000, None], cost[start:start + 1000, None]
        better = (cost[None] <= c) & (accuracy[None] >= a) & ((cost[None] < c) | (accuracy[None] > a))
        dominated[start:start + 1000] = better.any(axis=1)
    front = true_front(raw_accuracy, raw_cost)
    np.testing.assert_array_equal(front, ~dominated)
    assert 10 < front.sum() < 100
