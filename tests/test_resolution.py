"""The grids predictions are given and ranked on (harness.resolution)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression

from harness.predictors import nb201_accuracy_predictor
from harness.resolution import ACCURACY_RESOLUTION, OnGrid, on_grid, quantize


def test_values_a_few_ulps_apart_land_on_one_grid_point():
    value = 0.7312345678912345
    near = np.array([value, np.nextafter(value, 1.0), np.nextafter(value, 0.0), value + 1e-16])
    assert len(np.unique(on_grid(near, ACCURACY_RESOLUTION))) == 1
    # the grid still orders values a measurement can tell apart
    assert on_grid(np.array([0.5]), ACCURACY_RESOLUTION) < on_grid(np.array([0.5 + 2e-9]), ACCURACY_RESOLUTION)
    # on_grid gives values, quantize their multiples, and rounding twice changes nothing
    grid = on_grid(near, ACCURACY_RESOLUTION)
    np.testing.assert_array_equal(quantize(grid, ACCURACY_RESOLUTION), quantize(near, ACCURACY_RESOLUTION))
    np.testing.assert_array_equal(on_grid(grid, ACCURACY_RESOLUTION), grid)


def test_on_grid_wraps_any_regressor_and_clones():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = X @ [0.1, 0.2, 0.3] + 0.5
    model = OnGrid(LinearRegression(), resolution=1e-3)
    predicted = clone(model).fit(X, y).predict(X)
    np.testing.assert_allclose(predicted, LinearRegression().fit(X, y).predict(X), atol=5e-4 + 1e-12)
    np.testing.assert_array_equal(predicted, on_grid(predicted, 1e-3))
    assert model.get_params()["estimator"].__class__ is LinearRegression
    with pytest.raises(ValueError, match="OnGrid resolution must be a positive number, got -1"):
        OnGrid(LinearRegression(), resolution=-1).fit(X, y)


def test_tabular_accuracy_models_predict_on_the_accuracy_grid():
    rng = np.random.default_rng(1)
    ops = rng.integers(0, 5, size=(40, 6))
    X = np.column_stack([(ops != 0).sum(1), ops])
    y = rng.uniform(0.5, 0.9, 40)
    for name in ("ridge", "ridge-ensemble", "xgboost"):
        predicted = nb201_accuracy_predictor(name, seed=0).fit(X, y).predict(X)
        np.testing.assert_array_equal(predicted, on_grid(predicted, ACCURACY_RESOLUTION))
