"""NB101 features (adjacency + operators, path encoding, operator counts), the time regressors on them and
on the cost features, and the NB101 block sum."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from harness import CellSpace
from harness.cost_features import CostFeatures
from harness.nb101_features import NB101Features, nb101_time_regressor, path_encoding
from harness.nb101_space import INNER_OPERATORS, NB101_OPERATORS, NB101Space
from harness.nb201_space import NB201Space
from harness.regressors import REGRESSORS, NB101BlockSumRegressor, feature_time_regressor

SPACE = NB101Space(max_vertices=6)
GRID = {"max_depth": [2], "n_estimators": [20], "learning_rate": [0.1]}


def _paths(matrix, ops):
    """Every input-output path's inner operator sequence, by depth-first search."""
    matrix, out = np.array(matrix), len(ops) - 1
    found, stack = set(), [(0, ())]
    while stack:
        vertex, seq = stack.pop()
        if vertex == out:
            found.add(seq)
            continue
        for nxt in np.flatnonzero(matrix[vertex]):
            stack.append((nxt, seq + ((NB101_OPERATORS.index(ops[nxt]),) if nxt != out else ())))
    return found


def _column(seq):
    offset = sum(3**length for length in range(len(seq)))
    return offset + sum((op - INNER_OPERATORS[0]) * 3 ** (len(seq) - 1 - i) for i, op in enumerate(seq))


def test_path_encoding_marks_exactly_the_paths_of_each_cell():
    cells = SPACE.sample(150, None, seed=0)
    encoded = path_encoding(cells)
    assert encoded.shape == (150, 1 + 3 + 9 + 27 + 81)
    for row, (matrix, ops) in zip(encoded, zip(*SPACE.graphs(cells))):
        assert set(np.flatnonzero(row)) == {_column(seq) for seq in _paths(matrix, ops)}


def test_adjacency_and_count_features():
    cells = SPACE.sample(40, 3, seed=1)
    matrix = SPACE.to_matrix(cells)
    adjacency = NB101Features(encoding="adjacency").fit_transform(matrix)
    assert adjacency.shape == (40, 15 + 4 * 3 + 1)
    np.testing.assert_array_equal(adjacency[:, :15].sum(axis=1), cells.num_edges)
    counts = NB101Features(encoding="counts").fit_transform(matrix)
    np.testing.assert_array_equal(counts[:, :3].sum(axis=1), 3)
    np.testing.assert_array_equal(counts[:, 3], cells.num_edges)
    np.testing.assert_array_equal(adjacency[:, 15:27].reshape(40, 4, 3).sum(axis=(1, 2)), 3)


def test_features_follow_the_estimator_contract():
    matrix = SPACE.to_matrix(SPACE.sample(10, 2, seed=2))
    with pytest.raises(TypeError):
        NB101Features("path")
    with pytest.raises(ValueError, match="encoding must be one of"):
        clone(NB101Features(encoding="onehot")).fit(matrix)
    with pytest.raises(ValueError, match="not the width of an NB101 cell matrix"):
        NB101Features().fit(matrix[:, :-1])


@pytest.mark.parametrize("name", ["ridge", "nnls", "nnls_no_intercept", "xgboost", "mean", "cost_nnls"])
@pytest.mark.parametrize("encoding", ["adjacency", "path", "counts"])
def test_time_regressors_run_on_nb101_features(name, encoding):
    cells = SPACE.concat([SPACE.cells_of_size(1), SPACE.sample(40, 2, seed=3)])
    rng = np.random.default_rng(0)
    times = 1.0 + cells.num_edges + rng.random(len(cells))
    model = nb101_time_regressor(name, encoding, xgboost_grid=GRID).fit(SPACE.to_matrix(cells), times)
    predicted = model.predict(SPACE.to_matrix(SPACE.sample(20, 3, seed=4)))
    assert predicted.shape == (20,) and np.isfinite(predicted).all()


@pytest.mark.parametrize("space_name", ["pnas", "popnas", "nb201"])
def test_every_time_regressor_runs_on_the_cost_features(space_name):
    space = NB201Space() if space_name == "nb201" else CellSpace.pnas(max_blocks=3)
    cells = space.sample(60, 2, seed=5)
    matrix = space.to_matrix(cells)
    times = 1.0 + np.random.default_rng(1).random(len(cells))
    for name in [n for n in REGRESSORS if n != "block_sum"]:
        options = GRID if name == "xgboost" else None
        model = feature_time_regressor(name, CostFeatures(space=space_name), options).fit(matrix, times)
        assert np.isfinite(model.predict(matrix)).all()


def test_cost_regressor_recovers_a_time_linear_in_flops():
    cells = SPACE.sample(80, None, seed=6)
    matrix = SPACE.to_matrix(cells)
    flops = CostFeatures(space="nb101").fit_transform(matrix)[:, 1]
    times = 0.5 + 0.01 * flops
    model = nb101_time_regressor("cost_nnls").fit(matrix[:40], times[:40])
    np.testing.assert_allclose(model.predict(matrix[40:]), times[40:], rtol=1e-6)


def test_block_sum_is_exact_on_an_additive_time_model():
    # time = overhead + a cost per operator vertex: the block sum's own assumption
    cost = {1: 0.3, 2: 1.1, 3: 0.2}
    cells = SPACE.concat([SPACE.empty_cells(1), SPACE.cells_of_size(1), SPACE.sample(60, 2, seed=7)])
    def times(batch):
        ops = batch.ops[:, 1:-1]
        return 2.0 + sum(c * (ops == op).sum(axis=1) for op, c in cost.items())
    model = NB101BlockSumRegressor().fit(SPACE.to_matrix(cells), times(cells))
    target = SPACE.sample(50, 4, seed=8)  # parents mostly unmeasured: the recursive fallback
    np.testing.assert_allclose(model.predict(SPACE.to_matrix(target)), times(target))
    # a parent's own measured time (off the additive model) is used when present
    measured = cells.num_blocks == 2
    shifted = times(cells) + np.where(measured, 5.0, 0.0)
    model = NB101BlockSumRegressor().fit(SPACE.to_matrix(cells), shifted)
    parent = cells.take(np.flatnonzero(measured)[:1])
    children = SPACE.expand(parent)
    own = SPACE.keys(SPACE.bypass_last(children)[0]) == SPACE.keys(parent)[0]
    assert own.sum() >= 3  # the children whose last vertex is the new one
    np.testing.assert_allclose(model.predict(SPACE.to_matrix(children.take(own))),
                               times(children.take(own)) + 5.0)


def test_block_sum_needs_the_small_cells():
    cells = SPACE.sample(30, 2, seed=9)
    with pytest.raises(ValueError, match="size-0 cell"):
        NB101BlockSumRegressor().fit(SPACE.to_matrix(cells), np.ones(30))
