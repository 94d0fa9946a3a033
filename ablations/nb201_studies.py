"""Studies ``nb201_time_regressors`` and ``nb201_predictor_ranking``: the POPNAS and PNAS predictor
questions asked again on NAS-Bench-201's real measurements.

NAS-Bench-201 cells have 6 edges, each carrying one of 5 operators, ``none``
removing the edge. The count of non-``none`` operators (0..6) stands in for a
PNAS cell's block count: "a cell one block larger" is a cell with one more
operator. Level sizes: 1, 24, 240, 1,280, 3,840, 6,144 and 4,096 cells.

Features (:class:`NB201Features`, both studies)
    ``"onehot"`` (default): for each edge, one indicator per operator other
    than ``none`` (24 columns; ``none`` is the all-zero reference, so a
    linear model's coefficient is the cost of putting that operator on
    that edge instead of nothing), then the operator count. ``"index"``: the
    count and the 6 operator ids (the benchmark's order ``none,
    skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``), the analogue
    of POPNAS's "standard" categorical encoding. Both read the
    ``(n, 7)`` matrix of :meth:`NB201Space.to_matrix`.

Cost (one CPU core)
    ``nb201_time_regressors(repetitions=3, xgboost_grid=SMALL_XGB_GRID)``
    takes about 20 s (the main job's setting; POPNAS's full XGBoost grid
    is 144 times as many fits); ``nb201_predictor_ranking(trials=2,
    n_boot=200)`` about 50-70 s, mostly the 72 MLP fits (the ensemble's
    five members each), a quarter the Kendall bootstraps of the large test
    sets (scipy once per resample beyond 2,000 pairs).

Data
    Both studies load the table with :func:`backends.nb201.load_nb201_table`:
    the packaged copy by default, or a user's own copy in ``data_dir``
    (a missing one raises :class:`FileNotFoundError` naming where it looked,
    before any work).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import BaggingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm
from xgboost import XGBRegressor

from ablations.pnas_table1 import check_integer, spread_over_trials, trial_mean_correlation
from ablations.popnas_time_regressors import proper_and_progressive
from backends.nb201 import ACCURACY_SUFFIX, COST_PREFIX, load_nb201_table
from harness.metrics import METHODS, correlation_table
from harness.nb201_space import NB201_OPERATORS, NONE_ID, NUM_EDGES, NB201Space, count_operators
from harness.regressors import RIDGE_ALPHA, make_regressor, relative_error

SPACE = NB201Space()

#: Feature encodings of :class:`NB201Features`.
NB201_ENCODINGS: tuple[str, ...] = ("onehot", "index")

#: Operator ids other than ``none``, the one-hot columns of each edge.
_OPERATORS = np.array([i for i in range(len(NB201_OPERATORS)) if i != NONE_ID])

#: Largest operator count of a cell: the last level.
MAX_COUNT = NUM_EDGES


def _single_operator_cells() -> np.ndarray:
    """``(6, 4, 6)``: the cell with operator ``_OPERATORS[j]`` alone on edge ``e`` at ``[e, j]``."""
    cells = np.full((NUM_EDGES, len(_OPERATORS), NUM_EDGES), NONE_ID, np.int8)
    edge = np.arange(NUM_EDGES)
    cells[edge, :, edge] = _OPERATORS
    return cells


#: Keys of the empty cell and of the single-operator cells (``[edge, operator column]``).
_EMPTY_KEY = int(SPACE.keys(np.full((1, NUM_EDGES), NONE_ID))[0])
_SINGLE_KEYS = SPACE.keys(_single_operator_cells().reshape(-1, NUM_EDGES)).reshape(NUM_EDGES, len(_OPERATORS))


def _ops(X: Any, where: str) -> np.ndarray:
    """The ``(n, 6)`` cells of an NB201 cell matrix ``X``; ``ValueError`` naming what is wrong."""
    matrix = np.asarray(X)
    if matrix.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected integer cell values, got dtype {matrix.dtype}")
    if matrix.dtype.kind == "f" and not (np.isfinite(matrix).all() and (matrix == np.round(matrix)).all()):
        raise ValueError(f"{where}: an NB201 cell matrix holds integers (found fractional or non-finite values)")
    return SPACE.from_matrix(matrix.astype(np.int64), where=where)


class NB201Features(TransformerMixin, BaseEstimator):
    """NB201 cell matrix (operator count, 6 operator ids) -> regression features.

    ``encoding="onehot"``: 24 per-edge operator indicators (``none`` is the
    reference) and the count; ``"index"``: the count and the raw ids. See
    the module docstring. Stateless: ``fit`` only checks its input.
    """

    def __init__(self, encoding: str = "onehot"):
        self.encoding = encoding

    def fit(self, X, y=None):
        """Check ``encoding`` and ``X``; nothing is learned."""
        if self.encoding not in NB201_ENCODINGS:
            raise ValueError(f"encoding must be one of {NB201_ENCODINGS}, got {self.encoding!r}")
        _ops(X, "NB201Features.fit X")
        self.n_features_in_ = 1 + NUM_EDGES
        return self

    def transform(self, X) -> np.ndarray:
        """The ``(n, 25)`` one-hot or ``(n, 7)`` index features of ``X``, as floats."""
        check_is_fitted(self)
        ops = _ops(X, "NB201Features X")
        if self.encoding == "index":
            return SPACE.to_matrix(ops).astype(np.float64)
        onehot = (ops[:, :, None] == _OPERATORS).reshape(len(ops), -1)
        return np.concatenate([onehot, count_operators(ops)[:, None]], axis=1).astype(np.float64)


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
        ops = _ops(X, "NB201BlockSumRegressor.fit X")
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(ops),) or not (np.isfinite(y).all() and (y > 0).all()):
            raise ValueError(f"NB201BlockSumRegressor.fit y must be {len(ops)} positive finite values")
        keys = SPACE.keys(ops)
        counts = np.bincount(keys, minlength=SPACE.num_cells)
        measured = counts > 0
        times = np.bincount(keys, weights=y, minlength=SPACE.num_cells) / np.maximum(counts, 1)
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
        ops = _ops(X, "NB201BlockSumRegressor X").astype(np.int64)
        used = ops != NONE_ID
        # position of each operator counted from the cell's last one (1 = last)
        from_last = np.cumsum(used[:, ::-1], axis=1)[:, ::-1] * used
        operator_column = np.searchsorted(_OPERATORS, np.where(used, ops, _OPERATORS[0]))
        cost = np.where(used, self.marginal_[np.arange(NUM_EDGES), operator_column], 0.0)
        count = used.sum(axis=1)
        prediction = np.where(count == 0, self.times_[_EMPTY_KEY], np.nan)
        # k = count removes every operator: the empty cell, always measured, ends the search
        for k in range(1, MAX_COUNT + 1):
            gone = used & (from_last <= k)
            prefix_keys = SPACE.keys(np.where(gone, NONE_ID, ops))
            hit = np.isnan(prediction) & self.measured_[prefix_keys]
            prediction[hit] = self.times_[prefix_keys[hit]] + np.where(gone, cost, 0.0)[hit].sum(axis=1)
        return prediction


# ---------------------------------------------------------------------------- data
def _load(data_dir: str | os.PathLike | None) -> pd.DataFrame:
    """The checked table with row ``k`` the cell of key ``k``; ``FileNotFoundError`` when absent."""
    return load_nb201_table(data_dir).sort_values("key").reset_index(drop=True)


def _check_names(kind: str, names: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, non-empty, distinct and all in ``known``."""
    if isinstance(names, str) or len(names) == 0:
        raise ValueError(f"{kind} must be a non-empty sequence of names, got {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"{kind} must be distinct names from {tuple(known)}; got {list(names)}")
    return tuple(names)


def _fit(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A fitted clone of ``model``, with two expected MLP warnings silenced.

    The MLPs train a fixed number of epochs, so "maximum iterations reached"
    is their normal end; and a training set smaller than a minibatch (25
    cells at the smallest smaller-to-larger level) is one batch, as meant.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size` less than 1 or larger than sample size")
        return clone(model).fit(X, y)


# ---------------------------------------------------------------------------- latency regressors
#: Latency columns of the default regressor study: a server CPU, a GPU at batch 256, a phone
#: and an FPGA. Pixel 3 and Raspberry Pi 4 are left out: about 280 of their cells (the ones
#: whose output is cut off from the input) have latencies of a few microseconds, on which
#: relative errors explode whatever the regressor.
DEFAULT_DEVICES: tuple[str, ...] = ("lat_gold_6226", "lat_titanx_256", "lat_pixel2", "lat_fpga")

#: Regressors :func:`nb201_time_regressor` builds: POPNAS Table 3's four, NNLS without
#: intercept, and ``"mean"``, the training mean, a floor any model should beat.
NB201_TIME_REGRESSORS: tuple[str, ...] = ("block_sum", "ridge", "nnls", "nnls_no_intercept", "xgboost", "mean")

#: The default regressors of :func:`nb201_time_regressors`.
DEFAULT_TIME_REGRESSORS: tuple[str, ...] = ("block_sum", "ridge", "nnls", "xgboost", "mean")

#: A small XGBoost grid (2 settings, 5 folds) for the main job; the study's default is
#: POPNAS's 288-setting grid (:data:`harness.regressors.POPNAS_XGB_GRID`).
SMALL_XGB_GRID: dict[str, tuple] = {
    "n_estimators": (100,), "learning_rate": (0.1,), "max_depth": (2, 4),
    "min_child_weight": (1,), "gamma": (0,),
}

#: Columns of :func:`nb201_time_regressors`' table, in order.
TIME_REGRESSOR_COLUMNS: tuple[str, ...] = (
    "device", "regressor", "evaluation", "blocks", "mean_relative_error", "std_over_repetitions",
    "n", "repetitions", "encoding", "K",
)


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
    if name == "mean":
        return DummyRegressor(strategy="mean")
    options = {"param_grid": dict(xgboost_grid)} if name == "xgboost" and xgboost_grid is not None else {}
    return Pipeline([("features", NB201Features(encoding)), ("regressor", make_regressor(name, **options))])


def _level_samples(counts: np.ndarray, K: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each operator count ``0 .. 6``, ``min(K, level size)`` cell keys drawn without replacement."""
    return [
        np.sort(rng.choice(level, size=min(K, len(level)), replace=False))
        for level in (np.flatnonzero(counts == c) for c in range(MAX_COUNT + 1))
    ]


def nb201_time_regressors(
    data_dir: str | os.PathLike | None = None,
    devices: Sequence[str] = DEFAULT_DEVICES,
    regressors: Sequence[str] = DEFAULT_TIME_REGRESSORS,
    encoding: str = "onehot",
    K: int = 256,
    repetitions: int = 3,
    seed: int = 0,
    xgboost_grid: Mapping[str, Sequence] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """POPNAS's regressor ablation (POPNAS 4.1, Table 3) on NAS-Bench-201 latencies.

    Protocol: the operator count ``c`` plays POPNAS's block count. A
    repetition draws, for every level ``c = 0 .. 6``, ``S_c``: ``min(K,
    level size)`` random cells of ``c`` operators (levels 0, 1 and 2 are
    taken whole at ``K = 256``), standing for the cells a search trains at
    step ``c``. At step ``c = 2 .. 6`` each regressor is fitted on
    ``S_0 .. S_{c-1}`` (what a search knows before step ``c``, the empty
    cell being POPNAS's initial-thrust row) and predicts the latency of
    ``S_c``. As in POPNAS, ``"proper"`` error averages the relative errors
    of step ``c``, ``"progressive"`` pools steps ``2 .. c``
    (:func:`ablations.popnas_time_regressors.proper_and_progressive`). The
    cells are random rather than chosen by an accuracy predictor, and every
    device and regressor sees the same draws.

    ``devices`` are latency columns (``lat_...``); ``regressors`` names of
    :data:`NB201_TIME_REGRESSORS`; ``encoding`` one of
    :data:`NB201_ENCODINGS`; ``xgboost_grid`` XGBoost's grid (``None``:
    POPNAS's 288 settings; :data:`SMALL_XGB_GRID` is the main job's).
    Returns :data:`TIME_REGRESSOR_COLUMNS`: per ``(device, regressor,
    evaluation, blocks)`` the mean over repetitions of the mean relative
    error, its standard deviation over repetitions (NaN for one) and ``n``,
    the predictions behind one repetition's value. Raises
    ``FileNotFoundError`` when the table is absent (see the module docstring).
    """
    regressors = _check_names("regressors", regressors, NB201_TIME_REGRESSORS)
    K = check_integer("K", K, minimum=5)  # XGBoost's 5-fold cross-validation needs 5 rows a step
    repetitions = check_integer("repetitions", repetitions)
    models = {name: nb201_time_regressor(name, encoding, xgboost_grid) for name in regressors}
    table = _load(data_dir)
    devices = _check_names("devices", devices, [c for c in table.columns if c.startswith(COST_PREFIX)])

    matrix = SPACE.to_matrix(SPACE.all_cells())
    latency = {device: table[device].to_numpy(np.float64) for device in devices}
    frames = []
    work = [(r, step) for r in range(repetitions) for step in range(2, MAX_COUNT + 1)]
    levels = {r: _level_samples(matrix[:, 0], K, np.random.default_rng([seed, r])) for r in range(repetitions)}
    for r, step in tqdm(work, desc="nb201_time_regressors (repetition, step)", disable=not progress, leave=False):
        train, target = np.concatenate(levels[r][:step]), levels[r][step]
        for device, y in latency.items():
            for name, model in models.items():
                predicted = _fit(model, matrix[train], y[train]).predict(matrix[target])
                frames.append(pd.DataFrame({
                    "device": device, "regressor": name, "repetition": r, "step": step,
                    "relative_error": relative_error(y[target], predicted),
                }))
    per_repetition = proper_and_progressive(pd.concat(frames, ignore_index=True),
                                            ["device", "regressor", "repetition"])
    summary = (
        per_repetition.groupby(["device", "regressor", "evaluation", "blocks"], sort=False)
        .agg(mean_relative_error=("mean_relative_error", "mean"),
             std_over_repetitions=("mean_relative_error", "std"), n=("n", "first"))
        .reset_index()
        .assign(repetitions=repetitions, encoding=encoding, K=K)
    )
    return summary[list(TIME_REGRESSOR_COLUMNS)]


# ---------------------------------------------------------------------------- accuracy predictors
#: Predictors :func:`nb201_accuracy_predictor` builds.
NB201_PREDICTORS: tuple[str, ...] = ("mlp", "mlp-ensemble", "xgboost", "ridge")

#: The MLP: PNAS's two hidden layers of 100, Adam, a fixed budget of epochs in minibatches of 32.
#: The L2 penalty (scikit-learn's ``alpha``) was chosen in a pilot on CIFAR-10 (K = 256 random
#: cells, two seeds) among 1e-4, 1e-2 and 0.1: weaker penalties overfit the 256 cells
#: (Kendall tau 0.3-0.4 on the unseen cells, against 0.55-0.6 with 0.1).
MLP_SETTINGS: dict[str, Any] = {"hidden_layer_sizes": (100, 100), "alpha": 0.1, "batch_size": 32, "max_iter": 100}

#: PNAS's ensemble: 5 members, each fitted on a different random 4/5 of the training cells.
ENSEMBLE_MEMBERS, ENSEMBLE_FRACTION = 5, 0.8

#: XGBoost with fixed settings usual for a few hundred rows (not tuned on the test cells).
XGB_SETTINGS: dict[str, Any] = {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.05}

#: The two splits of :func:`nb201_predictor_ranking`.
RANKING_SPLITS: tuple[str, ...] = ("random", "smaller_to_larger")

#: Columns of :func:`nb201_predictor_ranking`'s table, in order.
RANKING_COLUMNS: tuple[str, ...] = (
    "dataset", "predictor", "split", "fit_blocks", "eval_blocks", "n_train", "n_test", "trials",
    "method", "value", "std_over_trials", "std_error", "ci_low", "ci_high", "n", "n_boot", "confidence",
)


def nb201_accuracy_predictor(name: str, seed: int = 0) -> BaseEstimator:
    """The unfitted accuracy predictor ``name`` (:data:`NB201_PREDICTORS`) on NB201 cell matrices.

    The PNAS predictors embed PNAS tokens and cannot read NB201 cells, so
    their idea is transposed. PNAS's MLP embeds each token, averages the
    embeddings and applies two hidden layers; on NB201 the natural token is
    an (edge, operator) pair, and averaging learned embeddings of the 6 edge
    tokens is a linear map of the one-hot encoding, so the model is an MLP
    on :class:`NB201Features` (one-hot) with PNAS's layer sizes
    (:data:`MLP_SETTINGS`; scikit-learn's squared loss and linear output
    replace PNAS's L1 loss and sigmoid, which matter little for ranking).
    The RNN is left out: a fixed-length, fixed-position sequence of 6
    tokens gives it nothing the MLP lacks. ``"mlp-ensemble"`` is PNAS's
    5-member ensemble (random 4/5 subsets, averaged), ``"xgboost"`` a
    strong tabular baseline (:data:`XGB_SETTINGS`) and ``"ridge"`` the
    additive model, one value per (edge, operator).
    """
    if name not in NB201_PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose one of {NB201_PREDICTORS}")
    if name == "xgboost":
        regressor = XGBRegressor(**XGB_SETTINGS, n_jobs=1, random_state=seed)
    elif name == "ridge":
        regressor = Ridge(alpha=RIDGE_ALPHA)
    else:
        # a fixed budget of epochs: tol=0 and patience beyond max_iter turn early stopping off
        regressor = MLPRegressor(**MLP_SETTINGS, tol=0.0, n_iter_no_change=MLP_SETTINGS["max_iter"] + 1,
                                 random_state=seed)
    model = Pipeline([("features", NB201Features("onehot")), ("regressor", regressor)])
    if name == "mlp-ensemble":
        return BaggingRegressor(model, n_estimators=ENSEMBLE_MEMBERS, max_samples=ENSEMBLE_FRACTION,
                                bootstrap=False, random_state=seed)
    return model


def _ranking_splits(counts: np.ndarray, K: int, seed: int, t: int, splits: Sequence[str]
                    ) -> list[tuple[str, int | None, np.ndarray, np.ndarray]]:
    """Trial ``t``'s ``(split, fit_blocks, train keys, test keys)``: one random split, and a
    smaller-to-larger split per level ``b = 1 .. 5``."""
    out = []
    everything = np.arange(len(counts))
    if "random" in splits:
        train = np.sort(np.random.default_rng([seed, t, 0]).choice(everything, size=K, replace=False))
        out.append(("random", None, train, np.setdiff1d(everything, train)))
    if "smaller_to_larger" in splits:
        for b in range(1, MAX_COUNT):
            pool = np.flatnonzero(counts <= b)
            train = np.sort(np.random.default_rng([seed, t, 1, b]).choice(pool, size=min(K, len(pool)),
                                                                         replace=False))
            out.append(("smaller_to_larger", b, train, np.flatnonzero(counts == b + 1)))
    return out


def nb201_predictor_ranking(
    data_dir: str | os.PathLike | None = None,
    dataset: str = "cifar10",
    predictors: Sequence[str] = NB201_PREDICTORS,
    splits: Sequence[str] = RANKING_SPLITS,
    K: int = 256,
    trials: int = 3,
    methods: Sequence[str] = METHODS,
    n_boot: int = 800,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """How well accuracy predictors rank unseen NAS-Bench-201 cells (Kendall tau-b and Spearman rho).

    Splits, each repeated in ``trials`` trials (a new training sample and
    model seed each; every predictor of a trial sees the same cells):

    * ``"random"``: fit on ``K`` uniformly random cells, rank all the
      others (``fit_blocks`` and ``eval_blocks`` are NA);
    * ``"smaller_to_larger"`` (PNAS's extrapolation, Table 1's
      rho-tilde): for ``b = 1 .. 5``, fit on ``min(K, ...)`` random cells
      with at most ``b`` operators, rank all cells with ``b + 1``.

    Targets are the test accuracy after 200 epochs on ``dataset``
    (``cifar10``, ``cifar100`` or ``imagenet16``), as fractions. Every row
    is a :func:`ablations.pnas_table1.trial_mean_correlation`: ``value`` is
    the mean over trials, ``std_over_trials`` the spread of the trials, and
    the interval a two-level bootstrap over trials and test cells (``n``
    counts the pairs over all trials). Columns: :data:`RANKING_COLUMNS`.
    Raises ``FileNotFoundError`` when the table is absent (see the module
    docstring).
    """
    predictors = _check_names("predictors", predictors, NB201_PREDICTORS)
    splits = _check_names("splits", splits, RANKING_SPLITS)
    methods = _check_names("methods", methods, METHODS)
    K = check_integer("K", K, minimum=ENSEMBLE_MEMBERS)
    if K >= SPACE.num_cells - 2:
        raise ValueError(f"K must leave at least 3 test cells of the {SPACE.num_cells}, got {K}")
    trials = check_integer("trials", trials)
    check_integer("n_boot", n_boot, minimum=2)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    table = _load(data_dir)
    datasets = sorted(c.removesuffix(ACCURACY_SUFFIX) for c in table if c.endswith(ACCURACY_SUFFIX))
    if dataset not in datasets:
        raise ValueError(f"unknown dataset {dataset!r}; the table has {datasets}")

    matrix = SPACE.to_matrix(SPACE.all_cells())
    accuracy = table[dataset + ACCURACY_SUFFIX].to_numpy(np.float64) / 100.0
    scored: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
    for t in tqdm(range(trials), desc="nb201_predictor_ranking (trial)", disable=not progress, leave=False):
        model_seed = int(np.random.SeedSequence([seed, t]).generate_state(1)[0])
        for split, b, train, test in _ranking_splits(matrix[:, 0], K, seed, t, splits):
            for name in predictors:
                model = _fit(nb201_accuracy_predictor(name, model_seed), matrix[train], accuracy[train])
                key = (name, split, b, len(train), len(test))
                scored.setdefault(key, []).append((model.predict(matrix[test]), accuracy[test]))

    rows = []
    for (name, split, b, n_train, n_test), pairs in scored.items():
        for method in methods:
            # the smaller-to-larger test set (a whole level) is the same in every trial
            estimate, values = trial_mean_correlation(
                pairs, method=method, n_boot=n_boot, confidence=confidence, seed=seed,
                common_cells=split == "smaller_to_larger",
            )
            labels = {
                "dataset": dataset, "predictor": name, "split": split,
                "fit_blocks": b, "eval_blocks": None if b is None else b + 1,
                "n_train": n_train, "n_test": n_test, "trials": trials,
                "std_over_trials": spread_over_trials(values),
            }
            rows.append((labels, estimate))
    frame = correlation_table(rows)
    frame[["fit_blocks", "eval_blocks"]] = frame[["fit_blocks", "eval_blocks"]].astype("Int64")
    return frame[list(RANKING_COLUMNS)]
