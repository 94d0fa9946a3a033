"""POPNAS's time regressors: block sum, NNLS, XGBoost with CV, factories and the error measure."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

import backends
from harness.encodings import PAPER_VARIANTS, CellFeatures, EncodingConfig, SlidingBlocks
from harness.regressors import (
    POPNAS_XGB_GRID,
    RIDGE_ALPHA,
    BlockSumRegressor,
    NNLSRegressor,
    XGBoostRegressorCV,
    make_regressor,
    make_time_regressor,
    relative_error,
)
from harness.space import CellBatch, CellSpace

SPACE3 = CellSpace.pnas(max_blocks=3)
SPACE5 = CellSpace.pnas(max_blocks=5)
TINY_GRID = {"n_estimators": [10], "max_depth": [2]}


@pytest.fixture(scope="module")
def surrogate_steps():
    """Surrogate-timed cells of POPNAS's first steps: all one-block cells, 2- and 3-block expansions."""
    backend = backends.make("surrogate", space=SPACE5)
    rng = np.random.default_rng(0)
    one = SPACE5.initial_cells()
    two = SPACE5.sample(300, 2, seed=1)
    children = SPACE5.expand(two)
    three = children.take(np.sort(rng.choice(len(children), 400, replace=False)))
    steps = {b: (SPACE5.to_matrix(cells), backend.evaluate(cells)["train_time"].to_numpy())
             for b, cells in ((1, one), (2, two), (3, three))}
    return steps


def upto(steps, last):
    X = np.concatenate([steps[b][0] for b in range(1, last + 1)])
    y = np.concatenate([steps[b][1] for b in range(1, last + 1)])
    return X, y


# ---------------------------------------------------------------------- block sum
BLOCK_SUM_TRAIN = {
    "(-1,sep3x3,-1,sep3x3)": 10.0,
    "(-2,identity,-1,sep5x5)": 20.0,
    "(-1,sep3x3,-1,sep5x5)": 15.0,
    "(-1,sep3x3,-1,sep3x3)(0,sep3x3,-2,identity)": 30.0,
}


def fitted_block_sum():
    cells = list(BLOCK_SUM_TRAIN)
    return BlockSumRegressor().fit(SPACE3.to_matrix(SPACE3.batch(cells)), list(BLOCK_SUM_TRAIN.values()))


def test_block_sum_hand_example():
    model = fitted_block_sum()
    cells = [
        # parent 10 + last block (-2,identity,0,sep5x5) read as (-2,identity,-1,sep5x5): 20
        "(-1,sep3x3,-1,sep3x3)(-2,identity,0,sep5x5)",
        # parent 30 + (1,sep5x5,0,sep3x3) read as (-1,sep5x5,-1,sep3x3), canonically (-1,sep3x3,-1,sep5x5): 15
        "(-1,sep3x3,-1,sep3x3)(0,sep3x3,-2,identity)(1,sep5x5,0,sep3x3)",
        # a measured one-block cell is its own time
        "(-2,identity,-1,sep5x5)",
    ]
    X = SPACE3.to_matrix(SPACE3.batch(cells))
    np.testing.assert_array_equal(model.predict(X), [30.0, 45.0, 20.0])
    np.testing.assert_array_equal(model.fallback_mask(X), [False, False, False])


def test_block_sum_fallbacks():
    model = fitted_block_sum()
    cells = [
        # unmeasured one-block cell: the mean one-block time (10 + 20 + 15) / 3
        "(-2,sep7x7,-1,sep3x3)",
        # unmeasured parent (-1,sep3x3,-1,sep3x3)(0,identity,-1,sep5x5): longest measured prefix 10,
        # plus 15 for (-1,identity,-1,sep5x5) unmeasured -> mean 15, plus 15 for the last block
        "(-1,sep3x3,-1,sep3x3)(-1,identity,0,sep5x5)(0,sep3x3,1,sep5x5)",
        # no measured prefix: the sum of the one-block times, 15 (unmeasured: the mean) + 10
        "(-2,sep7x7,-1,sep3x3)(0,sep3x3,0,sep3x3)",
        # unmeasured empty cell: the smallest measured time
        "empty",
    ]
    X = SPACE3.to_matrix(SPACE3.batch(cells))
    np.testing.assert_array_equal(model.predict(X), [15.0, 40.0, 25.0, 10.0])
    np.testing.assert_array_equal(model.fallback_mask(X), [True, True, True, True])


def test_block_sum_averages_repeats_and_uses_measured_empty_cell():
    X = SPACE3.to_matrix(SPACE3.batch(["empty", "(-1,sep3x3,-1,sep3x3)", "(-1,sep3x3,-1,sep3x3)"]))
    model = BlockSumRegressor().fit(X, [3.0, 10.0, 14.0])
    np.testing.assert_array_equal(model.predict(X), [3.0, 12.0, 12.0])
    assert not model.fallback_mask(X).any()


@pytest.mark.parametrize("growth", [0.12, None])
def test_block_sum_errs_opposite_to_the_surrogates_growth(growth):
    # positive growth: adding a block costs more than the block alone, so block sum underestimates;
    # the default growth is fitted to the measured table, where it is negative (overestimates)
    backend = backends.make("surrogate", space=SPACE5, **({} if growth is None else {"time_growth": growth}))
    rng = np.random.default_rng(0)
    one, two = SPACE5.initial_cells(), SPACE5.sample(100, 2, seed=1)
    children = SPACE5.expand(two)
    three = children.take(np.sort(rng.choice(len(children), 200, replace=False)))
    X = SPACE5.to_matrix(CellBatch.concat([one, two]))
    y = backend.evaluate(CellBatch.concat([one, two]))["train_time"].to_numpy()
    X3, y3 = SPACE5.to_matrix(three), backend.evaluate(three)["train_time"].to_numpy()
    model = BlockSumRegressor().fit(X, y)
    assert not model.fallback_mask(X3).any()  # every 3-block cell's parent was measured
    sign = np.sign(backend.time_growth)
    assert sign != 0 and np.mean(model.predict(X3) - y3) * sign < 0
    assert np.mean((model.predict(X3) - y3) * sign < 0) > 0.5


def test_block_sum_rejects_bad_training_data():
    two = SPACE3.to_matrix(SPACE3.sample(5, 2, seed=0))
    with pytest.raises(ValueError, match="needs measured one-block cells"):
        BlockSumRegressor().fit(two, np.ones(5))
    one = SPACE3.to_matrix(SPACE3.sample(3, 1, seed=0))
    with pytest.raises(ValueError, match=r"training times must be positive and finite, got -1.0 at row 1"):
        BlockSumRegressor().fit(one, [1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="1 \\+ 4 \\* max_blocks columns, got 6"):
        BlockSumRegressor().fit(np.ones((3, 6), int), np.ones(3))


def test_block_sum_estimator_contract(surrogate_steps):
    X, y = upto(surrogate_steps, 2)
    X3, _ = surrogate_steps[3]
    model = BlockSumRegressor().fit(X, y)
    state = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in model.__dict__.items()}
    first = model.predict(X3)
    for key, value in state.items():  # predict leaves the estimator unchanged
        np.testing.assert_array_equal(model.__dict__[key], value)
    np.testing.assert_array_equal(clone(model).fit(X, y).predict(X3), first)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X3), first)
    with pytest.raises(ValueError, match="expecting 21 features"):
        model.predict(X3[:, :13])
    with pytest.raises(Exception, match="not fitted"):
        BlockSumRegressor().predict(X3)


# The generic checks feed random floats, which are not cell matrices; block sum gets
# the checks that need no data, and its data contract is tested on cells above.
@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_mixin_order,
        estimator_checks.check_valid_tag_types,
    ],
    ids=lambda c: c.__name__,
)
def test_block_sum_parameter_checks(check):
    check("BlockSumRegressor", BlockSumRegressor())


# ---------------------------------------------------------------------- generic regressors
@estimator_checks.parametrize_with_checks(
    [NNLSRegressor(), NNLSRegressor(fit_intercept=False), XGBoostRegressorCV(param_grid=TINY_GRID, cv=2)]
)
def test_sklearn_compatible_regressor(estimator, check):
    check(estimator)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_nnls_breaks_ties_between_columns_by_index_not_by_rounding(fit_intercept):
    # two copies of a column: the fit may put the coefficient on either. Lawson-Hanson takes the one
    # whose gradient comes out larger, so a rounding-sized difference (as between BLAS kernels) used
    # to decide; the tie-break gives it to the later copy whichever copy rounds larger
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 2.0, size=(12, 3))
    y = base @ np.array([1.0, 2.0, 0.5]) + 3.0
    copy = base[:, [1]]
    for nudge in (1 + 4e-16, 1.0, 1 - 4e-16):
        X = np.hstack([base, copy * nudge, copy])
        model = NNLSRegressor(fit_intercept=fit_intercept).fit(X, y)
        assert model.coef_[3] == 0 and model.coef_[4] > 0, (nudge, model.coef_)
        # still a least-squares solution of the original problem: same residual as plain NNLS
        reference = LinearRegression(positive=True, fit_intercept=fit_intercept).fit(X, y)
        np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-8)


def test_nnls_coefficients_are_non_negative_and_match_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = X @ np.array([2.0, -3.0, 0.5, 0.0, -1.0, 1.0]) + 4.0 + rng.normal(0, 0.1, 200)
    for fit_intercept in (True, False):
        model = NNLSRegressor(fit_intercept=fit_intercept).fit(X, y)
        assert (model.coef_ >= 0).all()
        assert model.coef_[1] == 0 and model.coef_[4] == 0 and model.coef_[0] > 1
        reference = LinearRegression(positive=True, fit_intercept=fit_intercept).fit(X, y)
        np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-8)
        np.testing.assert_allclose(model.intercept_, reference.intercept_, atol=1e-8)
        np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-8)
    assert NNLSRegressor(fit_intercept=False).fit(X, y).intercept_ == 0.0


def test_xgboost_cv_selects_from_the_grid_deterministically():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4))
    y = np.exp(X[:, 0]) + X[:, 1] ** 2 + 5
    grid = {"n_estimators": [10, 30], "max_depth": [1, 3], "learning_rate": [0.1]}
    model = XGBoostRegressorCV(param_grid=grid, cv=3, random_state=7).fit(X, y)
    assert model.best_params_["n_estimators"] in (10, 30) and model.best_params_["max_depth"] in (1, 3)
    assert len(model.cv_results_["params"]) == 4
    assert model.best_estimator_.get_params()["max_depth"] == model.best_params_["max_depth"]
    again = XGBoostRegressorCV(param_grid=grid, cv=3, random_state=7).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert model.best_score_ == again.best_score_


def test_popnas_xgboost_grid():
    assert POPNAS_XGB_GRID == {
        "min_child_weight": (1, 3), "gamma": (0, 1), "n_estimators": (50, 100, 150, 250),
        "learning_rate": (0.01, 0.05, 0.1), "max_depth": (1, 2, 3, 5, 9, 13),
    }
    assert np.prod([len(v) for v in POPNAS_XGB_GRID.values()]) == 288
    assert XGBoostRegressorCV().get_params()["cv"] == 5


# ---------------------------------------------------------------------- pipelines
def test_pipeline_clone_and_grid_search(surrogate_steps):
    X, y = upto(surrogate_steps, 2)
    pipeline = Pipeline([("features", CellFeatures()), ("regressor", NNLSRegressor())])
    search = GridSearchCV(
        clone(pipeline),
        {"features__operator_index": ["standard", "static"], "regressor__fit_intercept": [True, False]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_mean_absolute_percentage_error",
        error_score="raise",
    ).fit(X, y)
    # the surrogate's costs follow POPNAS's cost order, so the static index fits better
    assert search.best_params_["features__operator_index"] == "static"
    assert (search.best_estimator_.named_steps["regressor"].coef_ >= 0).all()
    assert pipeline.named_steps["regressor"].get_params() == {"fit_intercept": True}
    assert not hasattr(pipeline.named_steps["regressor"], "coef_")  # the search fitted clones


def test_sliding_pipeline_in_grid_search(surrogate_steps):
    X, y = upto(surrogate_steps, 2)
    model = PAPER_VARIANTS["reordered_without_inputs"].build_regressor(NNLSRegressor())
    search = GridSearchCV(
        model, {"estimator__regressor__fit_intercept": [True, False]},
        cv=KFold(3, shuffle=True, random_state=0), error_score="raise",
    ).fit(X, y)
    assert isinstance(search.best_estimator_, SlidingBlocks)
    assert search.predict(X).shape == (len(X),)


def test_paper_variants_predict_larger_surrogate_cells(surrogate_steps):
    X, y = upto(surrogate_steps, 2)
    X3, y3 = surrogate_steps[3]
    errors = {
        name: relative_error(y3, make_time_regressor("nnls", config).fit(X, y).predict(X3)).mean()
        for name, config in PAPER_VARIANTS.items()
    }
    # the surrogate's costs follow the cost order, so re-indexing helps, as in POPNAS Table 4
    assert errors["reordered"] < errors["standard"]
    assert errors["dynamic_without_inputs"] < 0.2


# ---------------------------------------------------------------------- factories and errors
def test_make_regressor_names():
    assert isinstance(make_regressor("block_sum"), BlockSumRegressor)
    ridge = make_regressor("ridge")
    assert isinstance(ridge, Ridge) and ridge.alpha == RIDGE_ALPHA == 0.1
    assert make_regressor("ridge", alpha=2.0).alpha == 2.0
    assert make_regressor("nnls").fit_intercept is True
    assert make_regressor("nnls_no_intercept").fit_intercept is False
    assert make_regressor("xgboost", param_grid=TINY_GRID).param_grid == TINY_GRID
    with pytest.raises(ValueError, match="unknown regressor 'lasso'"):
        make_regressor("lasso")


def test_make_time_regressor_encodes_feature_regressors_only():
    assert isinstance(make_time_regressor("block_sum"), BlockSumRegressor)
    config = EncodingConfig("static", inputs=False, sliding_blocks=False)
    model = make_time_regressor("ridge", config, max_blocks=3)
    assert isinstance(model, Pipeline)
    assert model.named_steps["features"].max_blocks == 3
    assert isinstance(model.named_steps["regressor"], Ridge)
    assert isinstance(make_time_regressor("nnls"), SlidingBlocks)


def test_relative_error():
    np.testing.assert_allclose(relative_error([10.0, 20.0, 4.0], [12.0, 15.0, 4.0]), [0.2, 0.25, 0.0])
    np.testing.assert_allclose(relative_error(np.full((2, 2), 2.0), np.ones((2, 2))), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="differ in shape"):
        relative_error([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="got 0.0 at row 1"):
        relative_error([1.0, 0.0], [1.0, 1.0])

