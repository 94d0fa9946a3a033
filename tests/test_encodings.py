"""POPNAS's time-regressor features: layouts of Tables 1 and 2, re-indexes, sliding, initial thrust."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from harness.encodings import (
    INITIAL_THRUST_LAST_STEP,
    PAPER_VARIANTS,
    CellFeatures,
    EncodingConfig,
    SlidingBlocks,
    check_cell_matrix,
    feature_names,
    read_cells,
    regressor_training_rows,
    slide_blocks,
)
from harness.operators import PNAS_ORDER, POPNAS_ORDER
from harness.space import EMPTY, CellSpace

SPACE3 = CellSpace.pnas(max_blocks=3)
SPACE5 = CellSpace.pnas(max_blocks=5)

# POPNAS Tables 1 and 2: two one-block cells, both operators sep3x3 / sep5x5, B = 3
TABLE_CELLS = ["(-1,sep3x3,-1,sep3x3)", "(-1,sep5x5,-1,sep5x5)"]
TABLE_TIMES = np.array([63.145701, 63.789210])
EMPTY_CELL_TIME = 3.043455


def matrix(space: CellSpace, cells: list[str]) -> np.ndarray:
    return space.to_matrix(space.batch(cells))


def symmetric_cells(space: CellSpace) -> list[str]:
    return [f"(-1,{op},-1,{op})" for op in PNAS_ORDER]


# ---------------------------------------------------------------------- the paper's tables
def test_table1_sliding_blocks_rows():
    X, y = slide_blocks(matrix(SPACE3, TABLE_CELLS), TABLE_TIMES, max_blocks=3)
    features = CellFeatures(3, operator_index="static", inputs=False, block_count=False).fit(X, y)
    expected = [
        [5, 5, 0, 0, 0, 0], [0, 0, 5, 5, 0, 0], [0, 0, 0, 0, 5, 5],
        [6, 6, 0, 0, 0, 0], [0, 0, 6, 6, 0, 0], [0, 0, 0, 0, 6, 6],
    ]
    np.testing.assert_array_equal(features.transform(X), expected)
    np.testing.assert_array_equal(y, np.repeat(TABLE_TIMES, 3))
    assert list(features.get_feature_names_out()) == [f"b{j}_op{k}" for j in (1, 2, 3) for k in (1, 2)]


def test_table2_initial_thrust_rows():
    history = pd.DataFrame(
        {"cell": ["empty", TABLE_CELLS[0]], "blocks": [0, 1], "train_time": [EMPTY_CELL_TIME, TABLE_TIMES[0]],
         "step": [1, 1]}
    )
    rows = regressor_training_rows(history, step=2)
    X, y = slide_blocks(matrix(SPACE3, list(rows["cell"])), rows["train_time"].to_numpy(), max_blocks=3)
    features = CellFeatures(3, operator_index="static", inputs=False).fit(X, y)
    expected = [[0, 0, 0, 0, 0, 0, 0], [1, 5, 5, 0, 0, 0, 0], [1, 0, 0, 5, 5, 0, 0], [1, 0, 0, 0, 0, 5, 5]]
    np.testing.assert_array_equal(features.transform(X), expected)
    np.testing.assert_array_equal(y, [EMPTY_CELL_TIME] + [TABLE_TIMES[0]] * 3)
    assert features.get_feature_names_out()[0] == "blocks"


# ---------------------------------------------------------------------- layout and indexes
def test_layout_standard_values_and_names():
    X = matrix(SPACE3, ["(-2,sep3x3,-1,dilconv3x3)(0,identity,-1,maxpool3x3)", "empty"])
    out = CellFeatures(3).fit(X).transform(X)
    # inputs: input + lookback + 1; operators: PNAS id + 1; empty blocks and the empty cell: 0
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0], [2, 1, 2, 1, 8, 2, 3, 7, 5, 0, 0, 0, 0])
    np.testing.assert_array_equal(out[1], np.zeros(13))
    assert list(CellFeatures(3).fit(X).get_feature_names_out()) == feature_names(3) == [
        "blocks", "b1_in1", "b1_in2", "b1_op1", "b1_op2", "b2_in1", "b2_in2", "b2_op1", "b2_op2",
        "b3_in1", "b3_in2", "b3_op1", "b3_op2",
    ]


def test_static_index_is_popnas_cost_order():
    X = matrix(SPACE3, [f"(-1,{op},-1,{op})" for op in POPNAS_ORDER])
    out = CellFeatures(3, operator_index="static", inputs=False, block_count=False).fit(X).transform(X)
    np.testing.assert_array_equal(out[:, :2], np.repeat(np.arange(1, 9)[:, None], 2, axis=1))


def test_input_values_follow_lookback():
    space = CellSpace.pnas(max_blocks=3, lookback=1)
    X = matrix(space, ["(-1,sep3x3,-1,sep3x3)(0,sep3x3,-1,sep3x3)(1,sep3x3,0,sep3x3)"])
    out = CellFeatures(3, lookback=1, block_count=False).fit(X).transform(X)
    np.testing.assert_array_equal(out[0, [0, 1, 4, 5, 8, 9]], [1, 1, 1, 2, 2, 3])


def test_input_pruning_removes_exactly_the_input_columns():
    X = SPACE5.to_matrix(SPACE5.sample(50, 4, seed=3))
    full = CellFeatures(5).fit(X)
    pruned = CellFeatures(5, inputs=False).fit(X)
    names = list(full.get_feature_names_out())
    keep = [i for i, name in enumerate(names) if "_in" not in name]
    assert len(names) - len(keep) == 2 * 5
    assert list(pruned.get_feature_names_out()) == [names[i] for i in keep]
    np.testing.assert_array_equal(pruned.transform(X), full.transform(X)[:, keep])


def test_block_count_column_is_optional():
    X = SPACE5.to_matrix(SPACE5.sample(20, 2, seed=0))
    with_count = CellFeatures(5).fit(X).transform(X)
    without = CellFeatures(5, block_count=False).fit(X).transform(X)
    np.testing.assert_array_equal(with_count[:, 0], 2)
    np.testing.assert_array_equal(with_count[:, 1:], without)


def test_set_output_pandas_selects_paper_columns():
    X = matrix(SPACE3, TABLE_CELLS)
    frame = CellFeatures(3, operator_index="static").set_output(transform="pandas").fit(X).transform(X)
    selected = frame[["blocks", "b1_op1", "b1_op2"]]
    assert list(selected.itertuples(index=False, name=None)) == [(1, 5, 5), (1, 6, 6)]


def test_branch_order_is_canonicalised():
    canonical = matrix(SPACE3, ["(-2,sep5x5,-1,sep3x3)"])
    swapped = canonical.copy()
    swapped[0, 1:5] = swapped[0, [3, 4, 1, 2]]
    features = CellFeatures(3).fit(canonical)
    np.testing.assert_array_equal(features.transform(swapped), features.transform(canonical))


# ---------------------------------------------------------------------- dynamic re-index
def test_dynamic_index_matches_formula():
    times = np.array([40.0, 52.0, 61.0, 70.0, 12.0, 15.0, 16.0, 33.0])  # per PNAS-order operator
    X = matrix(SPACE3, symmetric_cells(SPACE3) + ["(-2,sep3x3,-1,sep3x3)", "(-1,sep3x3,-1,sep5x5)"])
    y = np.concatenate([times, [500.0, 900.0]])  # non-symmetric cells do not count
    features = CellFeatures(3, operator_index="dynamic", inputs=False, block_count=False).fit(X, y)
    expected = times / times.max() * 8
    np.testing.assert_allclose(features.operator_values_, expected)
    cell = matrix(SPACE3, ["(-1,sep7x7,-2,identity)(0,avgpool3x3,-1,conv1x7-7x1)"])
    # canonical branch order: (-2, identity, -1, sep7x7), (-1, conv1x7-7x1, 0, avgpool3x3)
    np.testing.assert_allclose(
        features.transform(cell)[0], [expected[4], expected[2], expected[3], expected[5], 0, 0]
    )


def test_dynamic_index_averages_repeats_and_ignores_slid_copies():
    times = np.arange(10.0, 90.0, 10.0)
    X = matrix(SPACE3, symmetric_cells(SPACE3) + [symmetric_cells(SPACE3)[0]])
    y = np.concatenate([times, [30.0]])  # sep3x3 measured twice: mean 20
    slid, slid_y = slide_blocks(X, y, 3)
    plain = CellFeatures(3, operator_index="dynamic").fit(X, y).operator_values_
    np.testing.assert_allclose(plain[0], 20.0 / 80.0 * 8)
    from_slid = CellFeatures(3, operator_index="dynamic").fit(slid, slid_y).operator_values_
    np.testing.assert_allclose(from_slid, plain)


def test_dynamic_index_names_missing_symmetric_cells():
    X = matrix(SPACE3, symmetric_cells(SPACE3)[:5] + ["(-2,maxpool3x3,-2,maxpool3x3)"])
    with pytest.raises(ValueError, match="missing: avgpool3x3, maxpool3x3, dilconv3x3$"):
        CellFeatures(3, operator_index="dynamic").fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="fit needs y"):
        CellFeatures(3, operator_index="dynamic").fit(X)


# ---------------------------------------------------------------------- sliding blocks
def test_slide_blocks_row_counts_and_order():
    X = matrix(SPACE5, ["empty", "(-1,sep3x3,-1,sep3x3)", "(-1,sep3x3,-1,sep3x3)(0,sep3x3,-2,identity)",
                        "(-1,sep3x3,-1,sep3x3)(0,sep3x3,-2,identity)(1,identity,0,sep3x3)"
                        "(2,sep3x3,1,sep3x3)(3,sep3x3,-1,sep3x3)"])
    slid, y = slide_blocks(X, np.array([1.0, 2.0, 3.0, 4.0]), 5)
    np.testing.assert_array_equal(y, [1.0] + [2.0] * 5 + [3.0] * 4 + [4.0])
    np.testing.assert_array_equal(slid[:, 0], [0] + [1] * 5 + [2] * 4 + [5])
    # the two-block cell starts one slot later in each of its rows
    for shift, row in enumerate(slid[6:10]):
        blocks = row[1:].reshape(5, 4)
        np.testing.assert_array_equal(blocks[shift : shift + 2], X[2, 1:9].reshape(2, 4))
        assert (np.delete(blocks, [shift, shift + 1], axis=0) == EMPTY).all()


def test_slid_rows_encode_as_shifted_feature_groups():
    X = SPACE5.to_matrix(SPACE5.sample(30, 2, seed=5))
    slid, _ = slide_blocks(X, np.ones(len(X)), 5)
    features = CellFeatures(5).fit(X)
    canonical = features.transform(X)
    out = features.transform(slid).reshape(len(X), 4, 21)
    for shift in range(4):
        expected = np.zeros_like(canonical)
        expected[:, 0] = canonical[:, 0]
        expected[:, 1 + 4 * shift : 1 + 4 * (shift + 2)] = canonical[:, 1:9]
        np.testing.assert_array_equal(out[:, shift], expected)


def test_read_cells_returns_offsets_of_slid_rows():
    slid, _ = slide_blocks(matrix(SPACE3, TABLE_CELLS), TABLE_TIMES, 3)
    cells, offset = read_cells(slid, SPACE3)
    np.testing.assert_array_equal(offset, [0, 1, 2, 0, 1, 2])
    assert SPACE3.format(cells) == [TABLE_CELLS[0]] * 3 + [TABLE_CELLS[1]] * 3


def test_slide_blocks_rejects_misplaced_blocks_and_bad_y():
    slid, y = slide_blocks(matrix(SPACE3, TABLE_CELLS), TABLE_TIMES, 3)
    with pytest.raises(ValueError, match="row 1 .*not a canonical cell matrix row"):
        slide_blocks(slid, y, 3)
    with pytest.raises(ValueError, match="y must be 1-D with 2 values"):
        slide_blocks(matrix(SPACE3, TABLE_CELLS), [1.0], 3)
    with pytest.raises(ValueError, match=r"shape \(n, 21\) for max_blocks=5"):
        slide_blocks(matrix(SPACE3, TABLE_CELLS), TABLE_TIMES, 5)


def test_sliding_blocks_fits_the_pipeline_on_slid_rows():
    X = SPACE5.to_matrix(SPACE5.sample(40, 2, seed=1))
    y = np.linspace(10.0, 50.0, len(X))
    pipeline = Pipeline([("features", CellFeatures(5)), ("regressor", LinearRegression())])
    model = SlidingBlocks(pipeline, max_blocks=5).fit(X, y)
    reference = clone(pipeline).fit(*slide_blocks(X, y, 5))
    np.testing.assert_allclose(model.predict(X), reference.predict(X))
    np.testing.assert_allclose(model.estimator_[-1].coef_, reference[-1].coef_)
    assert model.n_features_in_ == 21
    assert clone(model).get_params()["estimator__features__operator_index"] == "standard"


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X: X.__setitem__((0, 2), 9), r"invalid operator id in block 1 of cell 0"),
        (lambda X: X.__setitem__((0, 1), 1), r"invalid input in block 1 of cell 0"),
        (lambda X: X.__setitem__((0, 0), 2), r"cell 0"),
        (lambda X: X.__setitem__((0, 3), 300), r"value 300 at row 0, column 3 is out of the int8 range"),
    ],
)
def test_invalid_cells_are_named(change, message):
    X = matrix(SPACE3, TABLE_CELLS).astype(np.int16)
    features = CellFeatures(3).fit(X)
    change(X)
    with pytest.raises(ValueError, match=message):
        features.transform(X)


def test_gaps_fractions_and_widths_are_rejected():
    X = matrix(SPACE3, ["(-1,sep3x3,-1,sep3x3)(0,sep3x3,-1,sep3x3)"])
    features = CellFeatures(3).fit(X)
    gap = X.copy()
    gap[0, 5:9], gap[0, 9:13] = EMPTY, X[0, 5:9]
    with pytest.raises(ValueError, match=r"row 0 has blocks in the non-consecutive slots \[1, 3\]"):
        features.transform(gap)
    with pytest.raises(ValueError, match="value 0.5 at row 0, column 1 is not an integer"):
        check_cell_matrix(np.where(np.arange(13) == 1, 0.5, X.astype(float)), 3)
    with pytest.raises(ValueError, match="has 21 features, but CellFeatures is expecting 13"):
        features.transform(SPACE5.to_matrix(SPACE5.initial_cells()))
    with pytest.raises(ValueError, match="operator_index must be one of"):
        CellFeatures(3, operator_index="reordered").fit(X)


def test_float_cell_matrix_is_accepted():
    X = matrix(SPACE3, TABLE_CELLS)
    features = CellFeatures(3).fit(X)
    np.testing.assert_array_equal(features.transform(X.astype(np.float64)), features.transform(X))


# ---------------------------------------------------------------------- initial thrust
def test_initial_thrust_row_leaves_after_step_2():
    history = pd.DataFrame(
        {"blocks": [0, 1, 1, 2, 2, 3], "step": [1, 1, 1, 2, 2, 3], "train_time": np.arange(6.0)}
    )
    assert list(regressor_training_rows(history, 2)["blocks"]) == [0, 1, 1]
    assert list(regressor_training_rows(history, 3)["blocks"]) == [1, 1, 2, 2]
    assert list(regressor_training_rows(history, 4).index) == [1, 2, 3, 4, 5]
    assert list(regressor_training_rows(history, 2, initial_thrust=False)["blocks"]) == [1, 1]
    assert INITIAL_THRUST_LAST_STEP == 2
    assert list(EncodingConfig(initial_thrust=False).training_rows(history, 2)["blocks"]) == [1, 1]


def test_training_rows_validate_arguments():
    history = pd.DataFrame({"blocks": [1], "step": [1]})
    with pytest.raises(ValueError, match="step must be >= 2"):
        regressor_training_rows(history, 1)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['step'\]"):
        regressor_training_rows(history.drop(columns="step"), 2)


# ---------------------------------------------------------------------- configurations
def test_encoding_config_builds_each_variant():
    regressor = LinearRegression()
    sliding = PAPER_VARIANTS["dynamic_without_inputs"].build_regressor(regressor, max_blocks=4, lookback=1)
    assert isinstance(sliding, SlidingBlocks) and sliding.max_blocks == 4
    features = sliding.estimator.named_steps["features"]
    settings = (features.operator_index, features.inputs, features.max_blocks, features.lookback)
    assert settings == ("dynamic", False, 4, 1)
    assert sliding.estimator.named_steps["regressor"] is not regressor
    plain = EncodingConfig("static", inputs=True, sliding_blocks=False).build_regressor(regressor)
    assert isinstance(plain, Pipeline) and plain.named_steps["features"].operator_index == "static"
    assert PAPER_VARIANTS["reordered_without_inputs"] == EncodingConfig("static", False, True, True)
    with pytest.raises(ValueError, match="operator_index must be one of"):
        EncodingConfig("dyn")


# ---------------------------------------------------------------------- scikit-learn contract
# The generic checks feed random floats, which are not cell matrices; these are the
# checks that need no data, the data-dependent contract is tested on cells below.
PARAMETER_CHECKS = [
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_mixin_order,
    estimator_checks.check_valid_tag_types,
]


@pytest.mark.parametrize("check", PARAMETER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "estimator",
    [
        CellFeatures(operator_index="dynamic"),
        SlidingBlocks(Pipeline([("features", CellFeatures()), ("lr", LinearRegression())])),
    ],
    ids=["CellFeatures", "SlidingBlocks"],
)
def test_parameter_checks(check, estimator):
    check(type(estimator).__name__, estimator)


def test_fit_is_idempotent_and_transform_leaves_state():
    X = SPACE5.to_matrix(SPACE5.initial_cells())
    y = np.arange(1.0, len(X) + 1)
    features = CellFeatures(operator_index="dynamic").fit(X, y)
    state = dict(features.__dict__)
    first = features.transform(X)
    assert features.__dict__.keys() == state.keys()
    np.testing.assert_array_equal(features.fit(X, y).transform(X), first)
    np.testing.assert_array_equal(clone(features).fit_transform(X, y), first)
    with pytest.raises(Exception, match="not fitted"):
        CellFeatures().transform(X)
