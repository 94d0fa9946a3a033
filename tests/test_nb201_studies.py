"""NAS-Bench-201 studies: features and block sum (no data needed), then both studies on the shared table.

The study tests skip, with the reason, when ``../shared`` (or ``$POPNAS_SHARED``) lacks the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.nb201_studies import (
    RANKING_COLUMNS,
    TIME_REGRESSOR_COLUMNS,
    nb201_predictor_ranking,
    nb201_time_regressors,
)
from backends.nb201 import NB201_FILE
from harness.encodings import NB201Features
from harness.nb201_space import NB201Space
from harness.predictors import nb201_accuracy_predictor
from harness.regressors import NB201BlockSumRegressor, nb201_time_regressor

SPACE = NB201Space()
ALL = SPACE.all_cells()
MATRIX = SPACE.to_matrix(ALL)


@pytest.fixture(scope="module")
def data_dir() -> None:
    """The studies' default: the packaged table."""
    return None


# ---------------------------------------------------------------------- no data needed
def test_onehot_features_mark_each_edge_operator():
    features = NB201Features().fit(MATRIX).transform(MATRIX)
    assert features.shape == (len(ALL), 25)
    # every used edge sets exactly one indicator; the last column is the operator count
    np.testing.assert_array_equal(features[:, :24].sum(axis=1), MATRIX[:, 0])
    np.testing.assert_array_equal(features[:, 24], MATRIX[:, 0])
    cell = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    row = NB201Features().fit(MATRIX).transform(SPACE.to_matrix(cell[None]))[0]
    # edge e, operator id o (1..4) -> column 4 e + o - 1
    assert sorted(np.flatnonzero(row[:24])) == [0 * 4 + 3 - 1, 3 * 4 + 1 - 1, 5 * 4 + 4 - 1]
    index = NB201Features("index").fit(MATRIX).transform(MATRIX)
    np.testing.assert_array_equal(index, MATRIX)


def test_features_reject_bad_input():
    with pytest.raises(ValueError, match="encoding must be one of"):
        NB201Features("path").fit(MATRIX)
    with pytest.raises(ValueError, match="expected shape"):
        NB201Features().fit(MATRIX[:, 1:])
    with pytest.raises(ValueError, match="integers"):
        NB201Features().fit(MATRIX + 0.5)
    bad = MATRIX[:3].copy()
    bad[0, 0] = 5  # the count column disagrees with the cell
    with pytest.raises(ValueError, match="non-none operators"):
        NB201Features().fit(bad)


def _additive_latency(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0.5, 3.0, size=(6, 5))
    cost[:, 0] = 0.0  # none costs nothing
    return 2.0 + cost[np.arange(6), ALL].sum(axis=1)


def test_block_sum_is_exact_on_additive_latencies_even_without_parents():
    y = _additive_latency()
    counts = MATRIX[:, 0]
    rng = np.random.default_rng(1)
    # the empty cell, all single-operator cells and a few two-operator cells: most parents unmeasured
    train = np.concatenate([np.flatnonzero(counts <= 1), rng.choice(np.flatnonzero(counts == 2), 10)])
    model = NB201BlockSumRegressor().fit(MATRIX[train], y[train])
    np.testing.assert_allclose(model.predict(MATRIX), y)


def test_block_sum_uses_the_measured_parent():
    y = _additive_latency()
    # a two-operator parent, so not among the single-operator training cells
    parent = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    child = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    train = np.flatnonzero(MATRIX[:, 0] <= 1)
    rows = np.concatenate([MATRIX[train], SPACE.to_matrix(parent[None])])
    targets = np.append(y[train], y[SPACE.keys(parent[None])][0] + 1.0)  # the parent measured 1 higher
    model = NB201BlockSumRegressor().fit(rows, targets)
    assert model.predict(SPACE.to_matrix(child[None]))[0] == pytest.approx(y[SPACE.keys(child[None])][0] + 1.0)


def test_block_sum_needs_the_empty_and_single_operator_cells():
    y = _additive_latency()
    counts = MATRIX[:, 0]
    with pytest.raises(ValueError, match="empty cell"):
        NB201BlockSumRegressor().fit(MATRIX[counts == 1], y[counts == 1])
    with pytest.raises(ValueError, match="single-operator"):
        keep = (counts == 0) | (counts == 2)
        NB201BlockSumRegressor().fit(MATRIX[keep], y[keep])
    with pytest.raises(ValueError, match="positive"):
        NB201BlockSumRegressor().fit(MATRIX[:5], -y[:5])


def test_factories_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown regressor"):
        nb201_time_regressor("lasso")
    with pytest.raises(ValueError, match="unknown predictor"):
        nb201_accuracy_predictor("lstm")


def test_missing_table_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=NB201_FILE):
        nb201_time_regressors(data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=NB201_FILE):
        nb201_predictor_ranking(data_dir=tmp_path)


# ---------------------------------------------------------------------- time regressors on the table
TIME_TINY = dict(devices=("lat_gold_6226", "lat_titanx_256"), regressors=("block_sum", "ridge", "nnls", "mean"),
                 K=32, repetitions=2)


@pytest.fixture(scope="module")
def time_table(data_dir) -> pd.DataFrame:
    return nb201_time_regressors(data_dir, **TIME_TINY)


def test_time_regressor_table_layout(time_table):
    assert tuple(time_table.columns) == TIME_REGRESSOR_COLUMNS
    assert len(time_table) == 2 * 4 * 2 * 5  # devices x regressors x {proper, progressive} x steps 2..6
    assert sorted(time_table["blocks"].unique()) == [2, 3, 4, 5, 6]
    proper = time_table[time_table["evaluation"] == "proper"]
    assert (proper["n"] == 32).all()  # min(K, level size) cells predicted per step
    progressive = time_table[time_table["evaluation"] == "progressive"]
    assert progressive.groupby(["device", "regressor"])["n"].max().eq(5 * 32).all()


def test_relative_errors_are_finite_and_a_linear_model_beats_the_mean(time_table):
    errors = time_table["mean_relative_error"]
    assert np.isfinite(errors).all() and (errors >= 0).all()
    pivot = time_table.pivot_table(index=["device", "evaluation", "blocks"], columns="regressor",
                                   values="mean_relative_error")
    assert (pivot["ridge"] < pivot["mean"]).all()
    assert (pivot["nnls"] < pivot["mean"]).all()


def test_time_regressors_are_deterministic_by_seed(time_table, data_dir):
    pd.testing.assert_frame_equal(nb201_time_regressors(data_dir, **TIME_TINY), time_table)


def test_time_regressors_reject_bad_settings(data_dir):
    with pytest.raises(ValueError, match="devices must be distinct names"):
        nb201_time_regressors(data_dir, devices=("lat_gpu_9000",), regressors=("ridge",))
    with pytest.raises(ValueError, match="regressors must be distinct names"):
        nb201_time_regressors(data_dir, regressors=("ridge", "ridge"))
    with pytest.raises(ValueError, match="K must be"):
        nb201_time_regressors(data_dir, K=3)


# ---------------------------------------------------------------------- ranking on the table
RANK_TINY = dict(predictors=("ridge", "mlp"), K=64, trials=2, n_boot=50)


@pytest.fixture(scope="module")
def ranking(data_dir) -> pd.DataFrame:
    return nb201_predictor_ranking(data_dir, **RANK_TINY)


def test_ranking_layout(ranking):
    assert tuple(ranking.columns) == RANKING_COLUMNS
    random = ranking[ranking["split"] == "random"]
    assert random["fit_blocks"].isna().all() and (random["n_test"] == SPACE.num_cells - 64).all()
    larger = ranking[ranking["split"] == "smaller_to_larger"]
    assert sorted(larger["fit_blocks"].unique()) == [1, 2, 3, 4, 5]
    assert (larger["eval_blocks"] == larger["fit_blocks"] + 1).all()
    level_size = {2: 240, 3: 1280, 4: 3840, 5: 6144, 6: 4096}
    assert (larger["n_test"] == larger["eval_blocks"].map(level_size)).all()
    assert len(ranking) == 2 * 2 * (1 + 5)  # predictors x methods x (random + 5 levels)


def test_ranking_values_are_correlations_inside_their_intervals(ranking):
    values = ranking[["value", "ci_low", "ci_high"]].to_numpy(np.float64)
    assert np.isfinite(values).all() and (np.abs(values) <= 1).all()
    assert (ranking["ci_low"] <= ranking["value"]).all() and (ranking["value"] <= ranking["ci_high"]).all()


def test_trained_predictors_rank_unseen_cells_clearly_better_than_chance(ranking):
    random = ranking[ranking["split"] == "random"]
    assert (random["ci_low"] > 0.1).all()
    kendall = random.set_index(["predictor", "method"])["value"]
    spearman = kendall.xs("spearman", level="method")
    # Spearman's rho exceeds Kendall's tau for the same positive association
    assert (spearman > kendall.xs("kendall", level="method")).all()


def test_ranking_rejects_bad_settings(data_dir):
    with pytest.raises(ValueError, match="unknown dataset"):
        nb201_predictor_ranking(data_dir, dataset="mnist", **RANK_TINY)
    with pytest.raises(ValueError, match="splits must be distinct names"):
        nb201_predictor_ranking(data_dir, splits=("leave_one_out",), **RANK_TINY)


def test_fitting_an_ensemble_on_eight_cells_is_quiet():
    """Members on 4/5 of 8 cells (6) is the design, not a warning for the report's log."""
    import warnings

    from harness.predictors import fit_quietly

    rng = np.random.default_rng(2)
    ops = rng.integers(0, 5, size=(8, 6))
    X = np.column_stack([(ops != 0).sum(1), ops])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_quietly(nb201_accuracy_predictor("ridge-ensemble", seed=0), X, rng.uniform(0.5, 0.9, 8))
