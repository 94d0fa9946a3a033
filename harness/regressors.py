"""POPNAS's training-time regressors (POPNAS 3.3.3, 4.1) as scikit-learn regressors.

* :class:`BlockSumRegressor`: the block-sum heuristic, on raw cell matrices.
* Ridge with ``alpha = 0.1``: scikit-learn's :class:`~sklearn.linear_model.Ridge` as is.
* :class:`NNLSRegressor`: linear least squares with non-negative coefficients.
* :class:`XGBoostRegressorCV`: XGBoost tuned on POPNAS's grid by 5-fold cross-validation.

:func:`make_regressor` builds any of them by the name the paper's tables use;
:func:`make_time_regressor` adds the encoding of an
:class:`~harness.encodings.EncodingConfig` to those that need features.
:func:`relative_error` is the paper's error measure.
"""

from __future__ import annotations

import numbers
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data
from xgboost import XGBRegressor

from harness.encodings import (
    NB201_ENCODINGS,
    NB201_ONEHOT_OPERATORS,
    EncodingConfig,
    NB201Features,
    check_cell_matrix,
    nb201_cells,
)
from harness.nb201_space import NONE_ID, NUM_EDGES, NB201Space
from harness.space import EMPTY, CellBatch, CellSpace

#: POPNAS 4.1: Ridge's regularisation.
RIDGE_ALPHA = 0.1

#: POPNAS 4.1: XGBoost's hyper-parameter grid (2 * 2 * 4 * 3 * 6 = 288 combinations).
POPNAS_XGB_GRID: dict[str, tuple] = {
    "min_child_weight": (1, 3),
    "gamma": (0, 1),
    "n_estimators": (50, 100, 150, 250),
    "learning_rate": (0.01, 0.05, 0.1),
    "max_depth": (1, 2, 3, 5, 9, 13),
}


class BlockSumRegressor(RegressorMixin, BaseEstimator):
    """POPNAS's block-sum heuristic: a cell's time is its parent's plus its last block's.

    ``X`` is the raw cell matrix (:meth:`CellSpace.to_matrix`, any ``B``;
    ``B`` is read from its width). ``fit`` remembers the measured times
    (averaged over repeated cells). For a cell of ``b`` blocks the
    prediction is

    ``T(cell without its last block) + T1(last block)``

    where ``T1`` of a block is the measured time of the one-block cell made
    of it, its inputs that read earlier blocks (``0 .. b-2``) read the
    previous cell ``-1`` instead (a one-block cell can read nothing else);
    ``-2`` stays. A one-block cell is its own ``T1`` (its parent is the
    empty cell, whose pooling and classifier its own time already includes).

    Fallbacks, for cells outside POPNAS's flow (where every parent was
    trained the step before):

    * parent not measured: the longest measured prefix of the cell, plus
      ``T1`` of each block after it (the heuristic applied recursively);
      with no measured prefix, the sum of ``T1`` of all its blocks;
    * ``T1`` not measured: the mean ``T1`` of the measured one-block cells;
    * the empty cell, when not measured: the smallest measured time.

    :meth:`fallback_mask` tells which predictions used one (an attribute
    set in ``predict`` would break scikit-learn's rule that ``predict``
    leaves the estimator unchanged).

    Attributes
    ----------
    cell_keys_, cell_times_:
        sorted :meth:`CellSpace.keys` of the measured cells and their mean times.
    block_codes_, block_times_:
        sorted block codes (:meth:`CellSpace.block_codes`) of the measured
        one-block cells and their mean times.
    n_features_in_:
        width of the cell matrix.
    """

    def fit(self, X, y):
        """Remember the measured times of the cells of ``X``; it must hold one-block cells."""
        X, y = validate_data(self, X, y, dtype=None, y_numeric=True, reset=True)
        _check_times(y, "BlockSumRegressor.fit y")
        space = self._space()
        cells = space.from_matrix(check_cell_matrix(X, space.max_blocks, "BlockSumRegressor.fit X"))
        self.cell_keys_, self.cell_times_ = _mean_by_key(space.keys(cells), y)
        one = cells.num_blocks == 1
        if not one.any():
            raise ValueError(
                "BlockSumRegressor needs measured one-block cells in the training data; X has none"
            )
        self.block_codes_, self.block_times_ = _mean_by_key(space.block_codes(cells.take(one))[:, 0], y[one])
        return self

    def predict(self, X):
        """Block-sum training time of every cell of ``X``."""
        return self._predict(X)[0]

    def fallback_mask(self, X) -> np.ndarray:
        """``True`` where the prediction for a cell of ``X`` used a fallback (see the class docstring)."""
        return self._predict(X)[1]

    def _space(self) -> CellSpace:
        # a lookback-2 space holds the cells of both lookbacks: no lookback parameter needed
        width = self.n_features_in_
        if width < 5 or (width - 1) % 4:
            raise ValueError(f"a cell matrix has 1 + 4 * max_blocks columns, got {width}")
        return CellSpace.pnas(max_blocks=(width - 1) // 4, lookback=2)

    def _predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=None, reset=False)
        space = self._space()
        cells = space.from_matrix(check_cell_matrix(X, space.max_blocks, "BlockSumRegressor X"))
        num_blocks = cells.num_blocks.astype(np.intp)
        slot = np.arange(space.max_blocks)

        block_time, block_found = self._one_block_times(cells, space)
        # the longest measured proper prefix; prefixes grow with k, so the last hit wins
        prefix_length = np.zeros(len(cells), np.intp)
        prefix_time = np.zeros(len(cells))
        for k in range(1, space.max_blocks):
            prefix_blocks = np.where(slot[None, :, None] < k, cells.blocks, EMPTY)
            prefix = CellBatch(prefix_blocks, np.minimum(num_blocks, k))
            time, found = _lookup(self.cell_keys_, self.cell_times_, space.keys(prefix))
            hit = found & (num_blocks > k)
            prefix_length[hit], prefix_time[hit] = k, time[hit]
        summed = (slot[None, :] >= prefix_length[:, None]) & (slot[None, :] < num_blocks[:, None])
        prediction = prefix_time + np.where(summed, block_time, 0.0).sum(axis=1)
        fallback = (prefix_length < num_blocks - 1) | (summed & ~block_found).any(axis=1)

        empty = num_blocks == 0
        if empty.any():
            time, found = _lookup(self.cell_keys_, self.cell_times_, space.keys(cells.take(empty)))
            prediction[empty] = np.where(found, time, self.cell_times_.min())
            fallback[empty] = ~found
        return prediction, fallback

    def _one_block_times(self, cells: CellBatch, space: CellSpace) -> tuple[np.ndarray, np.ndarray]:
        """``(n, B)`` ``T1`` of every block (fallback: the mean ``T1``) and whether it was measured."""
        alone = cells.blocks.copy()
        inputs = alone[..., 0::2]
        inputs[inputs >= 0] = -1  # earlier blocks -> the previous cell; EMPTY (-128) stays
        # the remapped branches may be out of canonical order; the canonical (smaller-first)
        # order has the smaller block code of the two orders
        swapped = CellBatch(alone[..., [2, 3, 0, 1]], cells.num_blocks)
        codes = np.minimum(space.block_codes(CellBatch(alone, cells.num_blocks)), space.block_codes(swapped))
        time, found = _lookup(self.block_codes_, self.block_times_, codes.ravel())
        time = np.where(found, time, self.block_times_.mean()).reshape(codes.shape)
        return time, found.reshape(codes.shape)


def _mean_by_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ``keys`` and the mean of ``values`` per key."""
    unique, inverse = np.unique(keys, return_inverse=True)
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    return unique, means


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` at ``query`` in the sorted ``keys`` (NaN where absent), and where present."""
    position = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    found = keys[position] == query
    return np.where(found, values[position], np.nan), found


def _check_times(y: np.ndarray, where: str) -> None:
    bad = ~(np.isfinite(y) & (y > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: training times must be positive and finite, got {y[i].item()} at row {i}")


#: Relative step between the column scales of :func:`_nnls_without_ties`: far above the ~1e-14 by which
#: BLAS kernels disagree on a gradient, far below anything that moves the conditioning.
NNLS_TIE_BREAK = 1e-8


def _nnls_without_ties(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least-squares coefficients of ``b`` on ``A``, the same on every processor.

    Lawson-Hanson adds, at each step, the column of largest gradient. Columns whose gradients are
    equal on paper (copies of a column: one-hot features of operators seen in the same cells; or
    any column when the fit is not unique, as with fewer training rows than features) then go in
    in the order the processor's BLAS kernels round them, and the fit ends elsewhere. Measured on
    NAS-Bench-201 latency with 8 training cells: OpenBLAS's Haswell and SkylakeX kernels reached
    mean relative errors of 0.271 and 0.284. Column ``j`` is scaled by ``1 + j`` times
    :data:`NNLS_TIE_BREAK` and its coefficient scaled back: a rescaled column spans the same
    non-negative cone, so every solution is still a solution of the original problem, and ties on
    paper are broken by column index instead of by rounding.
    """
    scale = 1.0 + NNLS_TIE_BREAK * np.arange(A.shape[1])
    coef, _ = nnls(A * scale, b)
    return coef * scale


class NNLSRegressor(RegressorMixin, BaseEstimator):
    """Linear regression with non-negative coefficients (POPNAS's "NNLS").

    Solved with :func:`scipy.optimize.nnls` (Lawson-Hanson), with ties
    between columns broken by column index rather than by the processor's
    rounding (:func:`_nnls_without_ties`). With ``fit_intercept`` the
    intercept is free (it may be negative): ``X`` and ``y`` are centred,
    the coefficients fitted on them, and the intercept is
    ``mean(y) - mean(X) @ coef_``; that is what
    ``LinearRegression(positive=True)`` does too.

    Attributes
    ----------
    coef_:
        ``(n_features,)`` non-negative coefficients.
    intercept_:
        the intercept (0.0 without ``fit_intercept``).
    n_features_in_:
        number of features.
    """

    def __init__(self, fit_intercept=True):
        self.fit_intercept = fit_intercept

    def fit(self, X, y):
        """Least-squares coefficients of ``y`` on ``X`` under ``coef_ >= 0``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=True)
        if self.fit_intercept:
            x_mean, y_mean = X.mean(axis=0), y.mean()
            self.coef_ = _nnls_without_ties(X - x_mean, y - y_mean)
            self.intercept_ = float(y_mean - x_mean @ self.coef_)
        else:
            self.coef_ = _nnls_without_ties(X, y)
            self.intercept_ = 0.0
        return self

    def predict(self, X):
        """``X @ coef_ + intercept_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_


class XGBoostRegressorCV(RegressorMixin, BaseEstimator):
    """XGBoost whose hyper-parameters are chosen on a grid by cross-validation (POPNAS 4.1).

    Parameters
    ----------
    param_grid:
        a ``GridSearchCV`` grid over :class:`xgboost.XGBRegressor`
        parameters; ``None`` is :data:`POPNAS_XGB_GRID`.
    cv:
        number of folds (shuffled with ``random_state``, as the rows come
        ordered by step), or a scikit-learn splitter.
    scoring:
        the selection criterion; the default picks the smallest mean
        relative error, the paper's measure.
    random_state:
        seed of the folds and of XGBoost.
    n_jobs:
        parallel grid-search fits (each XGBoost fit uses one thread: on the
        few hundred rows of a step, fits in parallel beat threads in a fit).
    tree_method:
        XGBoost's ``tree_method``; ``"hist"`` is the fast one.

    Attributes
    ----------
    best_estimator_, best_params_, best_score_, cv_results_:
        as in :class:`~sklearn.model_selection.GridSearchCV`, refitted on all rows.
    n_features_in_:
        number of features.
    """

    def __init__(
        self,
        param_grid=None,
        cv=5,
        scoring="neg_mean_absolute_percentage_error",
        random_state=0,
        n_jobs=None,
        tree_method="hist",
    ):
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.tree_method = tree_method

    def fit(self, X, y):
        """Grid-search the hyper-parameters, then refit the best model on all of ``(X, y)``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=True)
        folds = (
            KFold(self.cv, shuffle=True, random_state=self.random_state)
            if isinstance(self.cv, numbers.Integral)
            else self.cv
        )
        model = XGBRegressor(tree_method=self.tree_method, random_state=self.random_state, n_jobs=1)
        grid = POPNAS_XGB_GRID if self.param_grid is None else self.param_grid
        search = GridSearchCV(model, grid, scoring=self.scoring, cv=folds, n_jobs=self.n_jobs).fit(X, y)
        self.best_estimator_ = search.best_estimator_
        self.best_params_ = search.best_params_
        self.best_score_ = search.best_score_
        self.cv_results_ = search.cv_results_
        return self

    def predict(self, X):
        """The best model's predictions."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.best_estimator_.predict(X)


#: Regressor name (as in ``ablations.paper_numbers``) -> factory.
REGRESSORS: dict[str, Callable[..., Any]] = {
    "block_sum": BlockSumRegressor,
    "ridge": partial(Ridge, alpha=RIDGE_ALPHA),
    "nnls": NNLSRegressor,
    "nnls_no_intercept": partial(NNLSRegressor, fit_intercept=False),
    "xgboost": XGBoostRegressorCV,
}


def make_regressor(name: str, **options):
    """The unfitted regressor ``name`` (a key of :data:`REGRESSORS`); ``options`` override its defaults."""
    if name not in REGRESSORS:
        raise ValueError(f"unknown regressor {name!r}; choose one of {sorted(REGRESSORS)}")
    return REGRESSORS[name](**options)


def make_time_regressor(
    name: str,
    encoding: EncodingConfig = EncodingConfig(),
    max_blocks: int = 5,
    lookback: int = 2,
    **options,
):
    """A ready time regressor on cell matrices: ``make_regressor(name, **options)`` plus ``encoding``.

    The block sum reads cells itself and is returned bare; the others get
    :meth:`EncodingConfig.build_regressor`. ``encoding.initial_thrust`` is
    about the training rows: apply it with :meth:`EncodingConfig.training_rows`.
    """
    regressor = make_regressor(name, **options)
    if isinstance(regressor, BlockSumRegressor):
        return regressor
    return encoding.build_regressor(regressor, max_blocks, lookback)


def relative_error(y_true, y_pred) -> np.ndarray:
    """POPNAS's relative error ``|y_pred - y_true| / y_true``, elementwise; ``y_true`` must be > 0."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    _check_times(y_true.ravel(), "relative_error y_true")
    return np.abs(y_pred - y_true) / y_true


# ---------------------------------------------------------------------------- NAS-Bench-201
_NB201 = NB201Space()


def _single_operator_cells() -> np.ndarray:
    """``(6, 4, 6)``: the cell with operator ``NB201_ONEHOT_OPERATORS[j]`` alone on edge ``e`` at ``[e, j]``."""
    cells = np.full((NUM_EDGES, len(NB201_ONEHOT_OPERATORS), NUM_EDGES), NONE_ID, np.int8)
    edge = np.arange(NUM_EDGES)
    cells[edge, :, edge] = NB201_ONEHOT_OPERATORS
    return cells


#: Keys of the empty cell and of the single-operator cells (``[edge, operator column]``).
_EMPTY_KEY = int(_NB201.keys(np.full((1, NUM_EDGES), NONE_ID))[0])
_SINGLE_KEYS = _NB201.keys(_single_operator_cells().reshape(-1, NUM_EDGES)).reshape(NUM_EDGES, len(NB201_ONEHOT_OPERATORS))



class NB201BlockSumRegressor(RegressorMixin, BaseEstimator):
    """POPNAS's block-sum heuristic transposed to NB201: parent's latency plus the last operator's cost.

    A cell's *last* operator is its non-``none`` operator on the highest
    edge (in the benchmark's edge order); its *parent* is the cell with that
    edge set to ``none`` (one operator fewer, as POPNAS's parent has one
    block fewer). The last operator's cost is its marginal cost alone,
    ``T(single-operator cell) - T(empty cell)``: POPNAS's ``T1`` of the last
    block, minus the pooling-and-classifier overhead that ``T1`` contains
    and the parent's time already counts. So the prediction is::

        T(parent) + T({op on edge}) - T(empty)

    Parents that were not measured fall back to the heuristic applied
    recursively: the longest measured prefix (the cell with its last ``k``
    operators removed, smallest ``k``; the empty cell ends the chain) plus
    the marginal cost of every removed operator. An unmeasured single-
    operator cell costs the mean measured marginal cost. A cell's own time
    is never looked up (as in POPNAS, where the predicted cells are new);
    the empty cell predicts its own time.

    ``X`` is the matrix of :meth:`NB201Space.to_matrix`; ``fit`` needs the
    empty cell and at least one single-operator cell among its rows.

    Attributes
    ----------
    times_, measured_:
        per cell key, the mean measured latency (0 where unmeasured) and
        whether the cell was measured.
    marginal_:
        ``(6, 4)`` marginal cost of each non-``none`` operator on each edge.
    n_features_in_:
        width of the cell matrix (7).
    """

    def fit(self, X, y):
        """Remember the measured latencies (averaged over repeated cells)."""
        ops = nb201_cells(X, "NB201BlockSumRegressor.fit X")
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(ops),) or not (np.isfinite(y).all() and (y > 0).all()):
            raise ValueError(f"NB201BlockSumRegressor.fit y must be {len(ops)} positive finite values")
        keys = _NB201.keys(ops)
        counts = np.bincount(keys, minlength=_NB201.num_cells)
        measured = counts > 0
        times = np.bincount(keys, weights=y, minlength=_NB201.num_cells) / np.maximum(counts, 1)
        if not measured[_EMPTY_KEY]:
            raise ValueError("NB201BlockSumRegressor needs the empty cell (all none) among the training rows")
        single = measured[_SINGLE_KEYS]
        if not single.any():
            raise ValueError("NB201BlockSumRegressor needs single-operator cells among the training rows")
        marginal = times[_SINGLE_KEYS] - times[_EMPTY_KEY]
        self.marginal_ = np.where(single, marginal, marginal[single].mean())
        self.times_, self.measured_ = times, measured
        self.n_features_in_ = 1 + NUM_EDGES
        return self

    def predict(self, X) -> np.ndarray:
        """Block-sum latency of every cell of ``X``."""
        check_is_fitted(self)
        ops = nb201_cells(X, "NB201BlockSumRegressor X").astype(np.int64)
        used = ops != NONE_ID
        # position of each operator counted from the cell's last one (1 = last)
        from_last = np.cumsum(used[:, ::-1], axis=1)[:, ::-1] * used
        operator_column = np.searchsorted(NB201_ONEHOT_OPERATORS, np.where(used, ops, NB201_ONEHOT_OPERATORS[0]))
        cost = np.where(used, self.marginal_[np.arange(NUM_EDGES), operator_column], 0.0)
        count = used.sum(axis=1)
        prediction = np.where(count == 0, self.times_[_EMPTY_KEY], np.nan)
        # k = count removes every operator: the empty cell, always measured, ends the search
        for k in range(1, NUM_EDGES + 1):
            gone = used & (from_last <= k)
            prefix_keys = _NB201.keys(np.where(gone, NONE_ID, ops))
            hit = np.isnan(prediction) & self.measured_[prefix_keys]
            prediction[hit] = self.times_[prefix_keys[hit]] + np.where(gone, cost, 0.0)[hit].sum(axis=1)
        return prediction



#: Regressors :func:`nb201_time_regressor` builds: POPNAS Table 3's four, NNLS without
#: intercept, and ``"mean"``, the training mean, a floor any model should beat.
NB201_TIME_REGRESSORS: tuple[str, ...] = ("block_sum", "ridge", "nnls", "nnls_no_intercept", "xgboost", "mean")


def nb201_time_regressor(name: str, encoding: str = "onehot",
                         xgboost_grid: Mapping[str, Sequence] | None = None) -> BaseEstimator:
    """The unfitted latency regressor ``name`` (:data:`NB201_TIME_REGRESSORS`) on NB201 cell matrices.

    Block sum reads cells itself and the mean needs no features; the others
    are ``Pipeline(NB201Features(encoding), make_regressor(name))``, XGBoost
    cross-validated on ``xgboost_grid`` (``None``: POPNAS's grid).
    """
    if name not in NB201_TIME_REGRESSORS:
        raise ValueError(f"unknown regressor {name!r}; choose one of {NB201_TIME_REGRESSORS}")
    if encoding not in NB201_ENCODINGS:
        raise ValueError(f"encoding must be one of {NB201_ENCODINGS}, got {encoding!r}")
    if name == "block_sum":
        return NB201BlockSumRegressor()
    return feature_time_regressor(name, NB201Features(encoding), xgboost_grid)


def feature_time_regressor(name: str, features: BaseEstimator,
                           xgboost_grid: Mapping[str, Sequence] | None = None) -> BaseEstimator:
    """``Pipeline(features, make_regressor(name))``, XGBoost on ``xgboost_grid`` (``None``: POPNAS's grid);
    ``"mean"`` is the training mean (no features)."""
    if name == "mean":
        return DummyRegressor(strategy="mean")
    options = {"param_grid": dict(xgboost_grid)} if name == "xgboost" and xgboost_grid is not None else {}
    return Pipeline([("features", features), ("regressor", make_regressor(name, **options))])


class NB101BlockSumRegressor(RegressorMixin, BaseEstimator):
    """POPNAS's block-sum heuristic on NAS-Bench-101-style cells: parent's time plus the last vertex's cost.

    A cell's *parent* is the cell with its last operator vertex bypassed
    (:meth:`~harness.nb101_space.NB101Space.bypass_last`: one vertex fewer,
    as POPNAS's parent has one block fewer), and that vertex's cost is its
    operator's marginal time alone, ``T(input -> op -> output) - T(input ->
    output)``, POPNAS's ``T1`` less the network around the cell that the
    parent's time already counts. An unmeasured parent falls back to its own
    parent (recursively, down to the size-0 cell), adding each bypassed
    vertex's cost; an unmeasured one-vertex chain costs the mean measured
    marginal cost. A cell's own time is never looked up; the size-0 cell
    predicts its own time.

    ``X`` is the matrix of :meth:`NB101Space.to_matrix`; ``fit`` needs the
    size-0 cell and at least one one-vertex chain among its rows.

    Attributes
    ----------
    cell_keys_, cell_times_:
        sorted keys of the measured cells and their mean times.
    marginal_:
        ``(3,)`` marginal cost of each inner operator (``harness.nb101_space.INNER_OPERATORS``).
    empty_time_:
        the size-0 cell's mean time.
    n_features_in_:
        width of the cell matrix.
    """

    def fit(self, X, y):
        """Remember the measured times (averaged over repeated cells) and the marginal operator costs."""
        from harness.nb101_features import nb101_cells, nb101_space_of
        from harness.nb101_space import INNER_OPERATORS, NB101_OPERATORS

        cells = nb101_cells(X, "NB101BlockSumRegressor.fit X")
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) != len(cells):
            raise ValueError(f"NB101BlockSumRegressor.fit: {len(cells)} cells but {len(y)} times")
        _check_times(y, "NB101BlockSumRegressor.fit y")
        space, _ = nb101_space_of(X, "NB101BlockSumRegressor.fit X")
        self.cell_keys_, self.cell_times_ = _mean_by_key(space.keys(cells), y)
        empty, found = _lookup(self.cell_keys_, self.cell_times_, space.keys(space.empty_cells(1)))
        if not found[0]:
            raise ValueError("NB101BlockSumRegressor needs the size-0 cell (input -> output) among the training rows")
        chains = space.parse_many([f"input|{NB101_OPERATORS[o]}|output;0>1,1>2" for o in INNER_OPERATORS])
        single, measured = _lookup(self.cell_keys_, self.cell_times_, space.keys(chains))
        if not measured.any():
            raise ValueError("NB101BlockSumRegressor needs one-vertex chains (input -> op -> output) among the "
                             "training rows")
        marginal = single - empty[0]
        self.marginal_ = np.where(measured, marginal, marginal[measured].mean())
        self.empty_time_ = float(empty[0])
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """Block-sum time of every cell of ``X``."""
        from harness.nb101_features import nb101_cells, nb101_space_of
        from harness.nb101_space import INNER_OPERATORS

        check_is_fitted(self)
        if np.asarray(X).shape[1] != self.n_features_in_:
            raise ValueError(f"NB101BlockSumRegressor X has {np.asarray(X).shape[1]} columns, fitted on "
                             f"{self.n_features_in_}")
        cells = nb101_cells(X, "NB101BlockSumRegressor X")
        space, _ = nb101_space_of(X, "NB101BlockSumRegressor X")
        prediction = np.where(cells.num_blocks == 0, self.empty_time_, np.nan)
        added = np.zeros(len(cells))
        pending = np.flatnonzero(cells.num_blocks > 0)
        current = cells.take(pending)
        while pending.size:
            current, removed = space.bypass_last(current)
            added[pending] += self.marginal_[removed.astype(np.intp) - INNER_OPERATORS[0]]
            time, found = _lookup(self.cell_keys_, self.cell_times_, space.keys(current))
            found |= current.num_blocks == 0  # the size-0 cell is always measured
            prediction[pending[found]] = np.where(current.num_blocks == 0, self.empty_time_, time)[found] \
                + added[pending[found]]
            pending, current = pending[~found], current.take(~found)
        return prediction

