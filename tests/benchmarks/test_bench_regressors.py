"""Speed of the time regressors on POPNAS's scale: one step's 301,056 five-block candidates.

Targets: encoding the candidates takes a few tens of ms (vectorised, no per-cell
Python); XGBoost's full 288-combination grid with 5-fold CV on ~500 rows (one
step's data) finishes in minutes on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest

import backends
from harness import CellSpace
from harness.encodings import PAPER_VARIANTS, CellFeatures
from harness.regressors import POPNAS_XGB_GRID, NNLSRegressor, XGBoostRegressorCV, make_regressor


@pytest.fixture(scope="module")
def space() -> CellSpace:
    return CellSpace.pnas(max_blocks=5)


@pytest.fixture(scope="module")
def parents(space):
    """The K = 256 four-block cells trained at step 4."""
    return space.sample(256, 4, seed=0)


@pytest.fixture(scope="module")
def candidates(space, parents):
    """Step 5's candidates: the unique children of the step-4 cells."""
    cells = space.expand(parents)
    assert len(cells) == 301_056
    return space.to_matrix(cells)


@pytest.fixture(scope="module")
def measured(space, parents):
    """Surrogate-timed data of steps 1-4: all one-block cells, then 256 cells per step."""
    backend = backends.make("surrogate", space=space)
    cells = [space.initial_cells(), space.sample(256, 2, seed=2), space.sample(256, 3, seed=3), parents]
    X = np.concatenate([space.to_matrix(c) for c in cells])
    y = np.concatenate([backend.evaluate(c)["train_time"].to_numpy() for c in cells])
    return X, y


def test_encode_candidates_dynamic(benchmark, candidates, measured):
    features = CellFeatures(operator_index="dynamic", inputs=False).fit(*measured)
    out = benchmark(features.transform, candidates)
    assert out.shape == (301_056, 11)
    benchmark.extra_info["cells"] = len(candidates)


def test_predict_candidates_nnls_pipeline(benchmark, candidates, measured):
    model = PAPER_VARIANTS["dynamic_without_inputs"].build_regressor(NNLSRegressor()).fit(*measured)
    predictions = benchmark(model.predict, candidates)
    assert predictions.shape == (301_056,) and np.isfinite(predictions).all()


def test_predict_candidates_block_sum(benchmark, candidates, measured):
    model = make_regressor("block_sum").fit(*measured)
    predictions = benchmark.pedantic(model.predict, args=(candidates,), rounds=3, iterations=1)
    assert predictions.shape == (301_056,)
    assert not model.fallback_mask(candidates[:5000]).any()  # every parent was measured


@pytest.mark.slow
def test_xgboost_full_grid_cv_fit(benchmark, measured):
    X_cells, y = measured
    X = CellFeatures(operator_index="static").fit(X_cells).transform(X_cells)
    rows = np.random.default_rng(0).choice(len(X), 500, replace=False)
    model = XGBoostRegressorCV(n_jobs=-1)
    benchmark.pedantic(model.fit, args=(X[rows], y[rows]), rounds=1, iterations=1)
    assert len(model.cv_results_["params"]) == np.prod([len(v) for v in POPNAS_XGB_GRID.values()]) == 288
    benchmark.extra_info["rows"] = len(rows)
    benchmark.extra_info["fits"] = 288 * 5 + 1
    benchmark.extra_info["best_params"] = model.best_params_
