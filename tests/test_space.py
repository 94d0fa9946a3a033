"""The cell search space: the papers' counts, canonical text, expansion and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import CellSpace
from harness.operators import PNAS_ORDER, POPNAS_ORDER
from harness.space import EMPTY, Cell


@pytest.mark.parametrize("factory", [CellSpace.pnas, CellSpace.popnas])
def test_block_structure_counts_match_pnas_section_3_1(factory):
    space = factory(max_blocks=5)
    expected = [256, 576, 1024, 1600, 2304]
    assert [space.num_block_structures(b) for b in range(1, 6)] == expected
    assert [len(space.block_structures(b, ordered=True)) for b in range(1, 6)] == expected
    assert space.num_cells(5) == 256 * 576 * 1024 * 1600 * 2304
    assert isinstance(space.num_cells(5), int)
    assert f"{space.num_cells(5):.1e}" == "5.6e+14"


def test_136_unique_one_block_cells(pnas_space):
    cells = pnas_space.initial_cells()
    assert len(cells) == 136
    assert len(np.unique(pnas_space.keys(cells))) == 136
    assert (cells.num_blocks == 1).all()


def test_expanding_all_ordered_one_block_structures_gives_147456(pnas_space):
    table = pnas_space.block_structures(1, ordered=True)
    matrix = np.full((256, 21), EMPTY, np.int16)
    matrix[:, 0], matrix[:, 1:5] = 1, table
    parents = pnas_space.from_matrix(matrix)
    assert len(parents) == 256
    assert len(pnas_space.unique(parents)) == 136
    assert len(pnas_space.expand(parents, dedupe=False)) == 147_456


def test_expand_unique_one_block_cells_gives_136_times_300(pnas_space):
    children = pnas_space.expand(pnas_space.initial_cells())
    assert len(children) == 136 * 300 == 40_800
    assert len(np.unique(pnas_space.keys(children))) == 40_800
    assert (children.num_blocks == 2).all()
    # every child keeps its parent's first block
    first = pnas_space.initial_cells().blocks[:, 0]
    assert np.array_equal(children.blocks[::300, 0], first)


def test_expand_four_block_cells(pnas_space):
    parents = pnas_space.sample(256, 4, seed=0)
    assert len(pnas_space.expand(parents, dedupe=False)) == 256 * 2304
    children = pnas_space.expand(parents)
    assert len(children) == 256 * 1176 == 301_056


def test_expand_removes_duplicate_parents(pnas_space):
    parents = pnas_space.sample(10, 2, seed=3)
    doubled = parents.concat([parents, parents])
    assert len(pnas_space.expand(doubled)) == len(pnas_space.expand(parents))


def test_lookback_one_space_counts():
    space = CellSpace.pnas(max_blocks=3, lookback=1)
    assert [space.num_block_structures(b) for b in (1, 2, 3)] == [64, 256, 576]
    assert len(space.initial_cells()) == 8 * 9 // 2


def test_popnas_space_uses_cost_order_and_concat(popnas_space):
    assert popnas_space.operator_order == POPNAS_ORDER
    assert popnas_space.combiner == "concat"
    assert CellSpace.pnas().operator_order == PNAS_ORDER


def test_canonical_branch_order(pnas_space):
    a = pnas_space.parse("(-1,sep3x3,-2,identity)")
    b = pnas_space.parse("(-2,identity,-1,sep3x3)")
    assert a == b
    assert pnas_space.format(a) == "(-2,identity,-1,sep3x3)"


def test_sample_is_deterministic_distinct_and_valid(pnas_space):
    a = pnas_space.sample(500, 3, seed=7)
    b = pnas_space.sample(500, 3, seed=7)
    c = pnas_space.sample(500, 3, seed=8)
    assert np.array_equal(a.blocks, b.blocks)
    assert not np.array_equal(a.blocks, c.blocks)
    assert len(np.unique(pnas_space.keys(a))) == 500
    pnas_space.validate(a)
    with pytest.raises(ValueError, match="only 136"):
        pnas_space.sample(137, 1, seed=0)


def test_empty_cell_text(pnas_space):
    empty = pnas_space.empty_cells(1)
    assert pnas_space.format(empty) == ["empty"]
    assert pnas_space.parse("empty") == Cell(())


cell_texts = st.integers(min_value=1, max_value=5).flatmap(
    lambda b: st.tuples(*[
        st.tuples(
            st.integers(-2, j - 1), st.sampled_from(PNAS_ORDER),
            st.integers(-2, j - 1), st.sampled_from(PNAS_ORDER),
        )
        for j in range(b)
    ])
)


@settings(max_examples=300, deadline=None)
@given(cell_texts)
def test_parse_format_round_trip(blocks):
    space = CellSpace.pnas()
    text = "".join(f"({a},{b},{c},{d})" for a, b, c, d in blocks)
    cell = space.parse(text)
    canonical = space.format(cell)
    assert space.parse(canonical) == cell
    assert space.format(space.parse(canonical)) == canonical
    batch = space.batch([text, canonical])
    assert batch[0] == batch[1] == cell
    # matrix form and the vectorised formatter agree
    assert space.format(space.from_matrix(space.to_matrix(batch))) == [canonical, canonical]


def test_parse_accepts_spaces(pnas_space):
    assert pnas_space.parse(" ( -1 , sep3x3 , -2 , identity ) ") == pnas_space.parse(
        "(-1,sep3x3,-2,identity)")


@pytest.mark.parametrize(
    "text, message",
    [
        ("(-1,sep9x9,-2,identity)", "unknown operator 'sep9x9'"),
        ("(-1,sep3x3,0,identity)", "input 0 out of range in block 1"),
        ("(-1,sep3x3,-2,identity)(2,sep3x3,-1,identity)", "input 2 out of range in block 2"),
        ("(-3,sep3x3,-1,identity)", "input -3 out of range"),
        ("(-1,sep3x3,-2)", "expected 4 tokens"),
        ("(-1,sep3x3,-2,identity)junk", "unexpected text 'junk'"),
        ("(x,sep3x3,-2,identity)", "malformed input 'x'"),
        ("", "malformed cell"),
        ("(-1,sep3x3,-1,sep3x3)" * 6, "6 blocks, more than max_blocks=5"),
    ],
)
def test_bad_cells_are_named(pnas_space, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pnas_space.parse(text)


def test_validate_names_bad_arrays(pnas_space):
    cells = pnas_space.sample(4, 2, seed=0)
    blocks = cells.blocks.copy()
    blocks[2, 1, 1] = 9
    with pytest.raises(ValueError, match="invalid operator id in block 2 of cell 2"):
        pnas_space.validate(type(cells)(blocks, cells.num_blocks))
    blocks = cells.blocks.copy()
    blocks[1, 1, 0] = 3
    with pytest.raises(ValueError, match="invalid input in block 2 of cell 1"):
        pnas_space.validate(type(cells)(blocks, cells.num_blocks))


def test_expand_refuses_full_cells(pnas_space):
    with pytest.raises(ValueError, match="already has max_blocks=5"):
        pnas_space.expand(pnas_space.sample(2, 5, seed=0))


@pytest.mark.parametrize("kwargs", [{"max_blocks": 0}, {"lookback": 3}, {"combiner": "mul"}])
def test_bad_space_settings(kwargs):
    with pytest.raises(ValueError):
        CellSpace(**kwargs)


def test_num_unique_cells_matches_expansion():
    space = CellSpace.pnas(max_blocks=3)
    assert space.num_unique_cells(2) == 136 * 300
    assert space.num_unique_cells(3) == math.prod([136, 300, 528])


def test_batch_indexing_like_a_sequence(pnas_space):
    cells = pnas_space.initial_cells()
    assert isinstance(cells[3], Cell) and cells[np.int64(3)] == cells[3]
    head = cells[:50]
    assert len(head) == 50 and pnas_space.format(head) == pnas_space.format(cells)[:50]
    assert pnas_space.format(cells[[5, 0]]) == [pnas_space.format(cells)[i] for i in (5, 0)]
    mask = np.zeros(len(cells), bool)
    mask[[1, 7]] = True
    assert pnas_space.format(cells[mask]) == pnas_space.format(cells.take([1, 7]))
    assert len(cells[[]]) == 0 and len(cells[np.array([], int)]) == 0
    with pytest.raises(TypeError, match="got str"):
        cells["0"]


@pytest.mark.parametrize("token", ["\uff11", "+0", "0_0", "\u0661", " - 1"])
def test_inputs_are_ascii_integers_only(pnas_space, token):
    """int() accepts full-width and Arabic-Indic digits, '+0' and '0_0'; cell text must not."""
    text = f"(-1,sep3x3,-2,identity)({token},maxpool3x3,-1,avgpool3x3)"
    with pytest.raises(ValueError, match="expected an integer in ASCII digits"):
        pnas_space.parse(text)
