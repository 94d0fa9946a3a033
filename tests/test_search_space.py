"""The search-space protocol: one suite that ``CellSpace`` and ``NB201Space`` both pass, and the
models the protocol's factories build for each."""

from __future__ import annotations

import numpy as np
import pytest

from harness import CellSpace
from harness.nb101_space import NB101Space
from harness.nb201_space import NB201Space
from harness.search_space import CellBatchLike, SearchSpace, accuracy_predictor, time_regressor

SPACES = {"pnas-B3": CellSpace.pnas(max_blocks=3), "popnas-B3-lookback1": CellSpace.popnas(max_blocks=3, lookback=1),
          "nb201": NB201Space(), "nb101-V6": NB101Space(max_vertices=6)}


@pytest.fixture(params=list(SPACES), scope="module")
def space(request) -> SearchSpace:
    return SPACES[request.param]


def test_implements_the_protocol(space):
    assert isinstance(space, SearchSpace)
    assert isinstance(space.initial_cells(), CellBatchLike)
    assert space.settings()["space"] == space.name and space.settings()["max_blocks"] == space.max_blocks


def test_text_round_trip(space):
    cells = space.sample(40, 2, seed=0)
    texts = space.format(cells)
    assert isinstance(texts, list) and len(set(texts)) == 40
    assert list(space.format_array(cells)) == texts
    np.testing.assert_array_equal(space.keys(space.parse_many(texts)), space.keys(cells))


def test_take_slices_and_masks_agree(space):
    cells = space.sample(10, 2, seed=1)
    texts = space.format(cells)
    assert space.format(cells[2:5]) == texts[2:5] == space.format(cells.take(slice(2, 5)))
    mask = np.arange(10) % 3 == 0
    assert space.format(cells[mask]) == [t for t, m in zip(texts, mask) if m]
    assert space.format(cells[[7, 1]]) == [texts[7], texts[1]]
    assert len(cells[np.array([], dtype=int)]) == 0


def test_initial_cells_are_every_size_one_cell(space):
    first = space.initial_cells()
    assert (first.num_blocks == 1).all()
    assert len(first) == space.num_unique_cells(1) == len(np.unique(space.keys(first)))


def test_expand_is_every_child_one_size_larger(space):
    first = space.initial_cells()
    children = space.expand(first)
    assert (children.num_blocks == 2).all()
    assert len(children) == len(np.unique(space.keys(children))) == space.num_unique_cells(2)
    # one parent's children: all one size larger, and a subset of the whole level's
    own = space.expand(first[:1])
    assert np.isin(space.keys(own), space.keys(children)).all()
    with pytest.raises(ValueError):
        space.expand(space.sample(1, space.max_blocks, seed=0))


def test_sample_by_size_and_over_every_size(space):
    a, b = space.sample(30, 2, seed=5), space.sample(30, 2, seed=5)
    np.testing.assert_array_equal(space.keys(a), space.keys(b))
    assert (a.num_blocks == 2).all() and len(np.unique(space.keys(a))) == 30
    assert not np.array_equal(space.keys(a), space.keys(space.sample(30, 2, seed=6)))
    mixed = space.sample(300, None, seed=2)
    assert len(np.unique(space.keys(mixed))) == 300
    assert mixed.num_blocks.min() >= 0 and mixed.num_blocks.max() <= space.max_blocks
    # uniform over cells: the largest size, by far the most numerous, dominates the draw
    assert (mixed.num_blocks == space.max_blocks).mean() > 0.2
    with pytest.raises(ValueError):
        space.sample(space.num_unique_cells(1) + 1, 1, seed=0)


def test_empty_cells_concat_and_unique(space):
    empty = space.empty_cells(2)
    assert len(empty) == 2 and (empty.num_blocks == 0).all() and len(space.empty_batch()) == 0
    cells = space.sample(5, 2, seed=3)
    both = space.concat([cells, cells[:2], space.empty_batch()])
    assert len(both) == 7
    assert space.format(space.unique(both)) == space.format(cells)


def test_mutate_changes_each_cell_once(space):
    parents = space.sample(min(200, space.num_unique_cells(2)), 2, seed=4)
    children = space.mutate(parents, np.random.default_rng(0))
    assert len(children) == len(parents)
    space.validate(children)
    assert (space.keys(children) != space.keys(parents)).all()
    again = space.mutate(parents, np.random.default_rng(0))
    np.testing.assert_array_equal(space.keys(again), space.keys(children))


def test_to_matrix_is_an_integer_matrix(space):
    cells = space.sample(25, 2, seed=7)
    matrix = space.to_matrix(cells)
    assert matrix.ndim == 2 and len(matrix) == 25 and matrix.dtype.kind == "i"
    assert (matrix[:, 0] == cells.num_blocks).all()


def test_predictor_and_time_regressor_fit_on_the_space(space):
    cells = space.concat([space.initial_cells(), space.sample(40, 2, seed=8)])
    accuracy = 0.5 + 0.3 * np.random.default_rng(0).random(len(cells))
    options = {"epochs": 5} if isinstance(space, CellSpace) else {}
    model = accuracy_predictor(space, "mlp", seed=0, **options).fit(cells, accuracy)
    predicted = model.predict(space.sample(10, 3 if space.max_blocks >= 3 else 2, seed=9))
    assert predicted.shape == (10,) and np.isfinite(predicted).all()
    times = 1.0 + cells.num_blocks + np.random.default_rng(1).random(len(cells))
    regressor = time_regressor(space).fit(space.to_matrix(cells), times)
    assert np.isfinite(regressor.predict(space.to_matrix(cells))).all()


def test_factories_reject_unknown_spaces():
    with pytest.raises(TypeError, match="no accuracy predictor"):
        accuracy_predictor(object(), "mlp")
    with pytest.raises(TypeError, match="no time regressor"):
        time_regressor(object())
