"""NAS-Bench-101-style cells: isomorphism keys against brute force, text round trip, validation, pruning,
the space's size counts and the moves."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.nb101_space import NB101_OPERATORS, NB101Batch, NB101Space, PAD

SMALL = NB101Space(max_vertices=5)
SPACE6 = NB101Space(max_vertices=6)


def _random_drawing(cells: NB101Batch, rng: np.random.Generator) -> tuple[list, list]:
    """The cells' compact matrices and operators with their inner vertices relabelled by a random
    topological order (a different drawing of the same graph)."""
    matrices, names = [], []
    for matrix, ops in zip(*SPACE6.graphs(cells)):
        matrix = np.array(matrix)
        m = len(ops)
        while True:
            inner = rng.permutation(np.arange(1, m - 1))
            order = np.r_[0, inner, m - 1]
            drawn = matrix[np.ix_(order, order)]
            if not np.tril(drawn).any():  # still upper triangular: a topological relabelling
                break
        matrices.append(drawn.tolist())
        names.append([ops[i] for i in order])
    return matrices, names


def _brute_force_isomorphic(a: tuple, b: tuple) -> bool:
    """Whether two compact (matrix, ops) cells are isomorphic, by trying every inner permutation."""
    (ma, oa), (mb, ob) = (np.array(a[0]), a[1]), (np.array(b[0]), b[1])
    if len(oa) != len(ob):
        return False
    m = len(oa)
    for inner in itertools.permutations(range(1, m - 1)):
        order = np.r_[0, list(inner), m - 1]
        if (ma[np.ix_(order, order)] == mb).all() and [oa[i] for i in order] == ob:
            return True
    return False


def test_redrawn_cells_get_one_key():
    cells = SPACE6.sample(300, 4, seed=0)
    matrices, names = _random_drawing(cells, np.random.default_rng(1))
    redrawn = SPACE6.from_graphs(matrices, names)
    np.testing.assert_array_equal(SPACE6.keys(redrawn), SPACE6.keys(cells))
    assert SPACE6.format(redrawn) == SPACE6.format(cells)


def test_keys_agree_with_brute_force_isomorphism_on_small_graphs():
    # every labelled 5-vertex cell with 3 inner vertices, 2 operators, pruned and valid: the key
    # classes must be exactly the brute-force isomorphism classes
    rng = np.random.default_rng(2)
    graphs = []
    for bits in range(2**10):
        matrix = np.zeros((5, 5), int)
        matrix[np.triu_indices(5, 1)] = (bits >> np.arange(10)) & 1
        ops = ["input", *rng.choice(["conv1x1-bn-relu", "maxpool3x3"], size=3), "output"]
        try:
            cell = SMALL.from_graphs([matrix.tolist()], [ops])
        except ValueError:
            continue
        if cell.num_blocks[0] == 3:
            graphs.append((matrix.tolist(), list(ops), int(SMALL.keys(cell)[0])))
    assert len(graphs) > 100
    picks = rng.choice(len(graphs), size=(600, 2))
    for i, j in picks:
        a, b = graphs[i], graphs[j]
        assert (a[2] == b[2]) == _brute_force_isomorphic(a[:2], b[:2]), (a, b)


def test_size_counts_and_level_sizes():
    assert [SMALL.num_unique_cells(b) for b in range(4)] == [1, 6, 84, 2441]
    assert SPACE6.num_unique_cells(4) == 62010
    with pytest.raises(ValueError, match="out of range"):
        SMALL.num_unique_cells(4)


@pytest.mark.slow
def test_the_full_space_has_nas_bench_101s_423624_cells():
    space = NB101Space()
    assert sum(space.num_unique_cells(b) for b in range(6)) == 423_624  # NAS-Bench-101's unique graphs


def test_text_round_trip_and_any_vertex_order():
    cells = SPACE6.sample(200, None, seed=3)
    texts = SPACE6.format(cells)
    again = SPACE6.parse_many(texts)
    assert SPACE6.format(again) == texts
    np.testing.assert_array_equal(SPACE6.keys(again), SPACE6.keys(cells))
    # the same cell written with its two inner vertices in the other order
    a = SPACE6.parse_many(["input|conv3x3-bn-relu|maxpool3x3|output;0>1,0>2,1>3,2>3,1>2"])
    b = SPACE6.parse_many(["input|conv3x3-bn-relu|maxpool3x3|output;0>1,0>2,1>3,2>3"])
    c = SPACE6.parse_many(["input|maxpool3x3|conv3x3-bn-relu|output;0>1,0>2,1>3,2>3"])
    assert SPACE6.keys(b) == SPACE6.keys(c) and SPACE6.keys(a) != SPACE6.keys(b)
    assert isinstance(SPACE6.format(cells[0]), str) and SPACE6.format(cells[0]) == texts[0]


def test_pruning_removes_vertices_off_every_path():
    # vertex 2 has no way to the output, vertex 3 no way from the input: both go
    cell = SPACE6.parse_many(["input|conv3x3-bn-relu|conv1x1-bn-relu|maxpool3x3|output;0>1,1>4,0>2,3>4"])
    assert SPACE6.format(cell) == ["input|conv3x3-bn-relu|output;0>1,1>2"]
    assert cell.num_blocks[0] == 1 and (cell.ops[0, 2:-1] == PAD).all()


@pytest.mark.parametrize(("text", "message"), [
    ("input|conv3x3-bn-relu|output", "expected 'input|op"),
    ("input|conv5x5|output;0>1,1>2", "unknown operator 'conv5x5' at vertex 1"),
    ("conv3x3-bn-relu|output;0>1", "vertex 0 is 'conv3x3-bn-relu'"),
    ("input|conv3x3-bn-relu|output;0>1", "no path from input to output"),
    ("input|conv3x3-bn-relu|output;1>0,1>2", r"entry \[1\]\[0\]"),
    ("input|conv3x3-bn-relu|output;0-1", "malformed edge '0-1'"),
    ("input|conv3x3-bn-relu|output;0>1,1>5", "beyond its 3 vertices"),
    ("input|" + "|".join(["maxpool3x3"] * 6) + "|output;0>1", "8 vertices"),
])
def test_bad_cells_name_the_bad_entry(text, message):
    with pytest.raises(ValueError, match=message) as info:
        NB101Space().parse_many(["input|maxpool3x3|output;0>1,1>2", text], where=lambda i: f"row {i + 1}")
    assert "row 2" in str(info.value)


def test_too_many_edges_after_pruning_is_refused():
    full = np.triu(np.ones((7, 7), int), 1)  # 21 edges
    with pytest.raises(ValueError, match="21 edges after pruning; a cell has at most 9"):
        NB101Space().from_graphs([full.tolist()], [["input", *["conv1x1-bn-relu"] * 5, "output"]])


def test_validate_refuses_a_non_canonical_batch():
    cells = SPACE6.sample(5, 3, seed=4)
    adjacency = cells.adjacency.copy()
    adjacency[:, 0, 0] = True
    with pytest.raises(ValueError, match="not upper triangular"):
        SPACE6.validate(NB101Batch(adjacency, cells.ops))
    ops = cells.ops.copy()
    ops[2, 1] = 9
    with pytest.raises(ValueError, match="cell 2 has an unknown operator id"):
        SPACE6.validate(NB101Batch(cells.adjacency, ops))
    reordered = cells.ops.copy()
    reordered[:, [1, 2]] = reordered[:, [2, 1]]
    differs = (reordered != cells.ops).any(axis=1)
    with pytest.raises(ValueError, match="not in canonical vertex order"):
        SPACE6.validate(NB101Batch(cells.adjacency[differs], reordered[differs]))


def test_expand_children_bypass_back_to_their_parent():
    parents = SPACE6.sample(20, 2, seed=5)
    for i in range(len(parents)):
        children = SPACE6.expand(parents[i : i + 1])
        assert len(children) and (children.num_blocks == 3).all()
        assert (children.num_edges <= 9).all()
        # bypassing some vertex of every child gives the parent back
        parent_key = SPACE6.keys(parents[i : i + 1])[0]
        for matrix, ops in zip(*SPACE6.graphs(children[:15])):
            matrix = np.array(matrix)
            found = False
            for u in range(1, len(ops) - 1):
                bypassed = matrix.copy()
                bypassed[np.ix_(matrix[:, u] == 1, matrix[u] == 1)] = 1
                keep = [x for x in range(len(ops)) if x != u]
                try:
                    cell = SPACE6.from_graphs([bypassed[np.ix_(keep, keep)].tolist()], [[ops[x] for x in keep]])
                except ValueError:
                    continue
                found |= SPACE6.keys(cell)[0] == parent_key
            assert found


def test_mutate_keeps_cells_valid_and_sized():
    parents = SPACE6.concat([SPACE6.empty_cells(3), SPACE6.sample(200, 3, seed=6)])
    children = SPACE6.mutate(parents, np.random.default_rng(0))
    SPACE6.validate(children)
    assert (SPACE6.keys(children) != SPACE6.keys(parents)).all()
    assert (np.abs(children.num_blocks.astype(int) - parents.num_blocks) <= 1).all()


def test_operator_names_are_nas_bench_101s():
    assert set(NB101_OPERATORS) == {"input", "output", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"}
