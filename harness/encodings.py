"""POPNAS's time-regressor features (POPNAS 3.3) as scikit-learn pieces.

Every estimator here takes cells as the *cell matrix* ``X`` of
:meth:`harness.space.CellSpace.to_matrix`: ``(n, 1 + 4 * B)`` integers,
``[num_blocks, in1, op1, in2, op2, (next block) ...]``, :data:`~harness.space.EMPTY`
in unused slots.

Features (:class:`CellFeatures`, POPNAS 3.3.3 and 3.3.4)
    The cell padded to ``B`` blocks, ``I1, I2, O1, O2`` per block (POPNAS's
    tuple order), after a ``blocks`` column (Table 2 puts it first)::

        blocks, b1_in1, b1_in2, b1_op1, b1_op2, b2_in1, ...

    An empty block is 0 in every column. Inputs are ``input + lookback + 1``
    (``-2 -> 1, -1 -> 2, 0 -> 3, ...`` with lookback 2), so 0 stays "empty".
    Operators are ``"standard"``: PNAS-order id + 1 (1..8, the +1 again
    keeps 0 for "empty"); ``"static"``: POPNAS's cost order 1..8
    ("reordered"); or ``"dynamic"``: ``time_o / max(T_1) * size(T_1)`` with
    ``T_1`` the measured times of the 8 symmetric one-block cells
    ``(-1, o, -1, o)``, learned in ``fit``. ``inputs=False`` drops the input
    columns (POPNAS's "w/o inputs"); ``block_count=False`` drops ``blocks``.
    Selecting columns of this layout gives the paper's Tables 1 and 2.

Sliding blocks (POPNAS 3.3.1, Table 1)
    A cell of ``b < B`` blocks gives ``B - b + 1`` training rows with its
    time, its blocks shifted one slot at a time. Those rows need a form, and
    a canonical cell matrix cannot hold a cell that does not start at slot 1,
    so they are *slid cell matrices*: the same layout, but a cell's ``b``
    blocks may occupy any ``b`` consecutive slots (the ``num_blocks`` column
    is unchanged). :func:`slide_blocks` makes them from canonical matrices,
    and :class:`CellFeatures` accepts them (it encodes each block in the slot
    it occupies), so the sliding happens *before* the encoder and the encoder
    sees every slid row, also when it learns the dynamic index.

    Sliding changes the number of rows, which a ``Pipeline`` step cannot do,
    so it is the meta-estimator :class:`SlidingBlocks`, wrapped *around* the
    whole pipeline::

        SlidingBlocks(Pipeline([("features", CellFeatures(...)), ("regressor", NNLSRegressor())]))

    ``fit`` slides the training cells and fits a clone of the pipeline on
    them; ``predict`` passes the (canonical, unshifted) cells straight to it.
    Cross-validation splits the original cells, and the augmentation happens
    inside each fold, so no slid copy of a test cell is ever trained on.

Initial thrust (POPNAS 3.3.2, Table 2)
    The empty cell's measured time is a training *row*, not a transform:
    :func:`regressor_training_rows` picks, from the measured history, the rows
    the regressor of a step trains on, keeping the ``b = 0`` row while the
    data holds one-block cells only.

:class:`EncodingConfig` switches the four options independently (one row of
POPNAS Tables 4-6 each; :data:`PAPER_VARIANTS` names them) and builds the
estimator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, TransformerMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from harness.nb201_space import NB201_OPERATORS, NONE_ID, NUM_EDGES, NB201Space, count_operators
from harness.operators import NUM_OPERATORS, PNAS_ORDER, POPNAS_ORDER
from harness.space import EMPTY, CellBatch, CellSpace, check_cell_matrix

#: The operator encodings of POPNAS 3.3.4 (``"static"`` is the paper's "reordered").
OPERATOR_INDEXES: tuple[str, ...] = ("standard", "static", "dynamic")

#: Last step whose regressor still trains on the empty cell (POPNAS 3.3.2): the step-2
#: regressor, fitted on the one-block cells; from step 3 on the data holds b = 1 and b = 2.
INITIAL_THRUST_LAST_STEP = 2

# Every feature column is a lookup in one of three tables, by the column's kind and the
# int8 value's byte (EMPTY = -128 is byte 128, negative inputs are bytes 254, 255).
_COUNT, _INPUT, _OPERATOR = 0, 1, 2
# Where a block's features come from, in POPNAS's order I1, I2, O1, O2 (matrix order is in1, op1, in2, op2).
_BLOCK_FIELDS = {True: (0, 2, 1, 3), False: (1, 3)}
_FIELD_NAMES = ("in1", "op1", "in2", "op2")


def _check_operator_index(value) -> None:
    if value not in OPERATOR_INDEXES:
        raise ValueError(f"operator_index must be one of {OPERATOR_INDEXES}, got {value!r}")


def _shift_slots(blocks: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``(n, B, 4)`` ``blocks`` with row ``i``'s slots moved right by ``shift[i]`` (left if negative).

    Slots moved in from outside are :data:`EMPTY`. Returns ``blocks`` itself
    when nothing moves, the common case of canonical cells.
    """
    if not shift.any():
        return blocks
    max_blocks = blocks.shape[1]
    source = np.arange(max_blocks)[None, :] - shift[:, None]
    inside = (source >= 0) & (source < max_blocks)
    out = np.take_along_axis(blocks, np.clip(source, 0, max_blocks - 1)[..., None], axis=1)
    out[~inside] = EMPTY
    return out


def read_cells(X, space: CellSpace, where: str = "cell matrix") -> tuple[CellBatch, np.ndarray]:
    """The validated canonical cells of a canonical or slid cell matrix, and each cell's slot offset.

    A slid row (see the module docstring) is moved back to start at slot 1,
    validated and canonicalised by :meth:`CellSpace.from_matrix`; ``offset[i]``
    is the slot row ``i`` started at (0 for canonical rows and empty cells).
    """
    matrix = check_cell_matrix(X, space.max_blocks, where)
    # which slots hold a block, as the bits of one integer per row: a table lookup then
    # tells whether they are consecutive and where they start
    pattern = (matrix[:, 2::4] != EMPTY) @ (1 << np.arange(space.max_blocks))
    start, consecutive = _slot_patterns(space.max_blocks)
    gaps = ~consecutive[pattern]
    if gaps.any():
        i = int(np.flatnonzero(gaps)[0])
        slots = np.flatnonzero(matrix[i, 2::4] != EMPTY) + 1
        raise ValueError(
            f"{where}: row {i} has blocks in the non-consecutive slots {slots.tolist()}; "
            f"a cell fills its first num_blocks slots, or consecutive ones after slide_blocks"
        )
    offset = start[pattern]
    if offset.any():
        blocks = matrix[:, 1:].reshape(len(matrix), space.max_blocks, 4)
        packed = _shift_slots(blocks, -offset).reshape(len(matrix), -1)
        matrix = np.concatenate([matrix[:, :1], packed], axis=1)
    return space.from_matrix(matrix, where=where), offset


@functools.cache
def _slot_patterns(max_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """First used slot and consecutiveness of every used-slot bit pattern of ``max_blocks`` slots."""
    start = np.zeros(2**max_blocks, np.intp)
    consecutive = np.zeros(2**max_blocks, bool)
    for first in range(max_blocks):
        for count in range(1, max_blocks - first + 1):
            pattern = ((1 << count) - 1) << first
            start[pattern], consecutive[pattern] = first, True
    consecutive[0] = True  # the empty cell
    start.setflags(write=False)
    consecutive.setflags(write=False)
    return start, consecutive


def slide_blocks(X, y, max_blocks: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """POPNAS's sliding blocks (3.3.1, Table 1) on a canonical cell matrix.

    Each cell of ``b`` blocks becomes ``B - b + 1`` rows of a *slid cell
    matrix*: its blocks start at slot 1, then 2, ... up to ``B - b + 1``,
    empty slots in front and behind, ``num_blocks`` unchanged; each row gets
    the cell's ``y``. Rows stay grouped by cell, shifts in increasing order.
    The empty cell has nothing to slide and stays one row (Table 2), as does
    a cell of ``B`` blocks. Only the layout is checked here (blocks in the
    first ``num_blocks`` slots); the encoder that reads the rows checks the
    values.
    """
    matrix = check_cell_matrix(X, max_blocks, "slide_blocks X")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(matrix):
        raise ValueError(f"slide_blocks: y must be 1-D with {len(matrix)} values, got shape {y.shape}")
    num_blocks = matrix[:, 0]
    used = matrix[:, 2::4] != EMPTY
    misplaced = (used != (np.arange(max_blocks)[None, :] < num_blocks[:, None])).any(axis=1)
    if misplaced.any():
        i = int(np.flatnonzero(misplaced)[0])
        slots = (np.flatnonzero(used[i]) + 1).tolist()
        raise ValueError(
            f"slide_blocks: row {i} ({num_blocks[i]} blocks, used slots {slots}) "
            f"is not a canonical cell matrix row: a cell's blocks must fill its first num_blocks slots"
        )
    copies = np.where(num_blocks == 0, 1, max_blocks - num_blocks + 1)
    rows = np.repeat(np.arange(len(matrix)), copies)
    shift = np.arange(len(rows)) - np.repeat(np.cumsum(copies) - copies, copies)
    blocks = matrix[rows, 1:].reshape(len(rows), max_blocks, 4)
    slid = _shift_slots(blocks, shift).reshape(len(rows), -1)
    return np.concatenate([num_blocks[rows, None], slid], axis=1), y[rows]


def feature_names(max_blocks: int = 5, inputs: bool = True, block_count: bool = True) -> list[str]:
    """Column names of :class:`CellFeatures`' output: ``blocks, b1_in1, b1_in2, b1_op1, b1_op2, ...``."""
    names = ["blocks"] if block_count else []
    for j in range(1, max_blocks + 1):
        names += [f"b{j}_{_FIELD_NAMES[f]}" for f in _BLOCK_FIELDS[inputs]]
    return names


class CellFeatures(TransformerMixin, BaseEstimator):
    """POPNAS's padded block features of cells (see the module docstring for the layout).

    Parameters
    ----------
    max_blocks, lookback:
        the cell space's ``B`` and lookback (inputs are validated against them).
    operator_index:
        ``"standard"`` (PNAS-order id + 1), ``"static"`` (POPNAS cost order
        1..8) or ``"dynamic"`` (``time_o / max(T_1) * 8`` from the measured
        times ``y`` of the symmetric one-block cells, learned in ``fit``).
    inputs:
        keep ``I1, I2`` per block; ``False`` is POPNAS's input pruning.
    block_count:
        put the ``blocks`` column first.

    ``X`` is a cell matrix, canonical or slid (:func:`slide_blocks`); the
    output is a float64 array of :func:`feature_names` columns.

    Attributes
    ----------
    operator_values_:
        ``(8,)`` value of each operator, indexed by global (PNAS-order) id.
    n_features_in_:
        width of the cell matrix, ``1 + 4 * max_blocks``.
    """

    def __init__(self, max_blocks=5, lookback=2, operator_index="standard", inputs=True, block_count=True):
        self.max_blocks = max_blocks
        self.lookback = lookback
        self.operator_index = operator_index
        self.inputs = inputs
        self.block_count = block_count

    def fit(self, X, y=None):
        """Check the parameters and ``X``; learn the dynamic operator values from ``(X, y)``."""
        _check_operator_index(self.operator_index)
        space = self._space()
        X = validate_data(self, X, dtype=None, reset=True)
        cells, _ = read_cells(X, space, "CellFeatures.fit X")
        if self.operator_index == "dynamic":
            self.operator_values_ = _dynamic_operator_values(cells, y)
        else:
            order = PNAS_ORDER if self.operator_index == "standard" else POPNAS_ORDER
            self.operator_values_ = np.array([order.index(op) + 1.0 for op in PNAS_ORDER])
        return self

    def transform(self, X):
        """The features of the cells of ``X``, ``(n, len(feature_names))`` float64."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=None, reset=False)
        cells, offset = read_cells(X, self._space(), "CellFeatures.transform X")
        n = len(cells)
        blocks = _shift_slots(cells.blocks, offset).reshape(n, -1)
        values = np.concatenate([cells.num_blocks[:, None], blocks], axis=1)
        columns, kinds = self._layout()
        index = values[:, columns].view(np.uint8) + (kinds * 256).astype(np.uint16)
        return self._lookup_table()[index]

    def get_feature_names_out(self, input_features=None):
        """Output column names (``input_features`` is ignored: they depend on the layout only)."""
        check_is_fitted(self)
        return np.asarray(feature_names(self.max_blocks, self.inputs, self.block_count), dtype=object)

    def __sklearn_tags__(self):
        """scikit-learn tags: ``y`` is required only to learn the dynamic index."""
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.operator_index == "dynamic"
        return tags

    def _space(self) -> CellSpace:
        return CellSpace(max_blocks=self.max_blocks, lookback=self.lookback)

    def _layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Source column (in ``[num_blocks, slot values...]``) and table kind of each output column."""
        fields = _BLOCK_FIELDS[bool(self.inputs)]
        columns = [1 + 4 * j + f for j in range(self.max_blocks) for f in fields]
        kinds = [_INPUT if f in (0, 2) else _OPERATOR for _ in range(self.max_blocks) for f in fields]
        if self.block_count:
            columns, kinds = [0] + columns, [_COUNT] + kinds
        return np.array(columns), np.array(kinds)

    def _lookup_table(self) -> np.ndarray:
        """``(3 * 256,)`` feature value of each (column kind, value byte); 0 for EMPTY."""
        table = np.zeros((3, 256))
        table[_COUNT, : self.max_blocks + 1] = np.arange(self.max_blocks + 1)
        inputs = np.arange(-self.lookback, self.max_blocks - 1)
        table[_INPUT, inputs.astype(np.int8).view(np.uint8)] = inputs + self.lookback + 1
        table[_OPERATOR, :NUM_OPERATORS] = self.operator_values_
        return table.ravel()


def _dynamic_operator_values(cells: CellBatch, y) -> np.ndarray:
    """POPNAS 3.3.4: ``index_o = time_o / max(T_1) * size(T_1)``, per global operator id.

    ``time_o`` is the measured time of the symmetric one-block cell
    ``(-1, o, -1, o)``, averaged when it was measured more than once (slid
    copies carry the same time, so they leave the average unchanged).
    """
    if y is None:
        raise ValueError(
            "operator_index='dynamic' learns operator values from measured times: fit needs y"
        )
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (len(cells),):
        raise ValueError(f"y must be 1-D with {len(cells)} training times, got shape {y.shape}")
    first = cells.blocks[:, 0].astype(np.int64)
    symmetric = (
        (cells.num_blocks == 1) & (first[:, 0] == -1) & (first[:, 2] == -1) & (first[:, 1] == first[:, 3])
    )
    ops = first[symmetric, 1]
    counts = np.bincount(ops, minlength=NUM_OPERATORS)
    if (counts == 0).any():
        missing = [PNAS_ORDER[o] for o in np.flatnonzero(counts == 0)]
        raise ValueError(
            f"dynamic re-index needs the measured times of the 8 symmetric one-block cells "
            f"(-1, op, -1, op); missing: {', '.join(missing)}"
        )
    times = np.bincount(ops, weights=y[symmetric], minlength=NUM_OPERATORS) / counts
    if not (np.isfinite(times) & (times > 0)).all():
        raise ValueError(f"dynamic re-index needs positive finite times, got T_1 = {times.tolist()}")
    return times / times.max() * NUM_OPERATORS


class SlidingBlocks(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Fits ``estimator`` on the slid copies of the training cells (POPNAS 3.3.1).

    ``estimator`` takes cell matrices, slid ones included (a ``Pipeline``
    starting with :class:`CellFeatures`); ``fit`` applies
    :func:`slide_blocks` and fits a clone of it, ``predict`` passes the
    cells through unchanged.

    Attributes
    ----------
    estimator_:
        the fitted clone of ``estimator``.
    n_features_in_:
        width of the cell matrix.
    """

    def __init__(self, estimator, max_blocks=5):
        self.estimator = estimator
        self.max_blocks = max_blocks

    def fit(self, X, y):
        """Slide the cells of ``X`` and fit a clone of ``estimator`` on the slid rows."""
        X, y = validate_data(self, X, y, dtype=None, y_numeric=True, reset=True)
        slid, times = slide_blocks(X, y, self.max_blocks)
        self.estimator_ = clone(self.estimator).fit(slid, times)
        return self

    def predict(self, X):
        """The fitted estimator's predictions for the (canonical) cells of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=None, reset=False)
        return self.estimator_.predict(X)


class TruncatedPredictionFeatures(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """``regressor`` fitted on the features as they are, predicting on them truncated to integers.

    A quirk of the POPNAS v1 code (``AndreaFalanti/popnas`` at ``31ce4e5``):
    ``train.py`` (``Train.process``) writes the regressor's training rows
    with the dynamic re-index ``8 * time_o / max(T_1)`` as a real number,
    but ``encoder.py`` (``ControllerManager.update_step``) builds each
    child's prediction row with ``np.concatenate(reindexed_child,
    axis=None).astype('int32')``, truncating the re-indexed operators
    towards zero (2.9 -> 2) before ``regressor_NNLS.predict``. Children
    whose operators truncate alike then get identical predicted times.
    Placed after :class:`CellFeatures` in the pipeline
    (:meth:`EncodingConfig.build_regressor` with
    ``integer_prediction_features``).

    Attributes
    ----------
    regressor_:
        the fitted clone of ``regressor``.
    n_features_in_:
        number of features.
    """

    def __init__(self, regressor):
        self.regressor = regressor

    def fit(self, X, y):
        """Fit a clone of ``regressor`` on ``(X, y)`` unchanged (v1's training rows are not cast)."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=True)
        self.regressor_ = clone(self.regressor).fit(X, y)
        return self

    def predict(self, X):
        """``regressor_``'s predictions for ``X`` truncated to int32, as v1 predicts."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.regressor_.predict(X.astype(np.int32).astype(np.float64))


def regressor_training_rows(history: pd.DataFrame, step: int, initial_thrust: bool = True) -> pd.DataFrame:
    """The measured rows POPNAS's time regressor ``R_step`` trains on (POPNAS 3.2, 3.3.2).

    ``step`` is the iteration ``b`` whose cells the regressor predicts, so
    its data are the rows measured at earlier steps (``history["step"] <
    step``). The empty-cell row (``blocks == 0``, measured before the
    one-block cells, at any step below 2) is the initial thrust: with
    ``initial_thrust`` it is kept for ``step = 2`` only, the regressor
    fitted on the one-block cells, and gone from step 3 on, whose data hold
    cells of 1 and 2 blocks ("after the second iteration ... the initial row
    will be removed"). Without ``initial_thrust`` it is never used.

    ``history`` needs the columns ``blocks`` and ``step``; the other columns
    (``cell``, ``train_time`` ...) and the index are kept.
    """
    missing = sorted({"blocks", "step"} - set(history.columns))
    if missing:
        raise ValueError(f"history lacks the column(s) {missing}; it has {list(history.columns)}")
    if step < 2:
        raise ValueError(
            f"step must be >= 2 (step 1 trains every one-block cell without a regressor), got {step}"
        )
    rows = history[history["step"] < step]
    if not initial_thrust or step > INITIAL_THRUST_LAST_STEP:
        rows = rows[rows["blocks"] > 0]
    return rows


@dataclass(frozen=True)
class EncodingConfig:
    """One time-regressor encoding of POPNAS's ablation (a row of Tables 4-6).

    Parameters
    ----------
    operator_index:
        ``"standard"``, ``"static"`` or ``"dynamic"`` (see :class:`CellFeatures`).
    inputs:
        keep the block inputs as features (``False``: "w/o inputs").
    sliding_blocks:
        train on the slid copies of the cells (:class:`SlidingBlocks`).
    initial_thrust:
        train the step-2 regressor on the empty cell too (:func:`regressor_training_rows`).
    integer_prediction_features:
        truncate the features of the cells predicted (not of the training
        rows) to integers, as the POPNAS v1 code does
        (:class:`TruncatedPredictionFeatures`); off in the paper's variants.
    """

    operator_index: str = "standard"
    inputs: bool = True
    sliding_blocks: bool = True
    initial_thrust: bool = True
    integer_prediction_features: bool = False

    def __post_init__(self) -> None:
        _check_operator_index(self.operator_index)

    def build_regressor(self, regressor, max_blocks: int = 5, lookback: int = 2):
        """An unfitted estimator on cell matrices: features, then a clone of ``regressor``.

        ``Pipeline([("features", CellFeatures(...)), ("regressor", regressor)])``,
        wrapped in :class:`SlidingBlocks` when ``sliding_blocks``. Regressors
        that read cells themselves (block sum) need no encoding:
        :func:`harness.regressors.make_time_regressor` knows which.
        """
        features = CellFeatures(max_blocks, lookback, self.operator_index, self.inputs)
        regressor = clone(regressor)
        if self.integer_prediction_features:
            regressor = TruncatedPredictionFeatures(regressor)
        pipeline = Pipeline([("features", features), ("regressor", regressor)])
        return SlidingBlocks(pipeline, max_blocks) if self.sliding_blocks else pipeline

    def training_rows(self, history: pd.DataFrame, step: int) -> pd.DataFrame:
        """:func:`regressor_training_rows` with this configuration's ``initial_thrust``."""
        return regressor_training_rows(history, step, self.initial_thrust)


#: The encodings POPNAS's ablation compares, by the name the paper's tables give them
#: (``ablations.paper_numbers``). Table 4's rows; Tables 5 and 6 compare
#: ``"reordered_without_inputs"`` ("static") with ``"dynamic_without_inputs"``, the
#: setup chosen in 4.1.2 and the final regressor of 4.2. Sliding blocks and initial
#: thrust are part of every run: the paper does not ablate them.
PAPER_VARIANTS: dict[str, EncodingConfig] = {
    "standard": EncodingConfig("standard", inputs=True),
    "reordered": EncodingConfig("static", inputs=True),
    "without_inputs": EncodingConfig("standard", inputs=False),
    "reordered_without_inputs": EncodingConfig("static", inputs=False),
    "dynamic_without_inputs": EncodingConfig("dynamic", inputs=False),
}


# ---------------------------------------------------------------------------- NAS-Bench-201
_NB201 = NB201Space()

#: Feature encodings of :class:`NB201Features`.
NB201_ENCODINGS: tuple[str, ...] = ("onehot", "index")

#: Operator ids other than ``none``, the one-hot columns of each edge.
NB201_ONEHOT_OPERATORS = np.array([i for i in range(len(NB201_OPERATORS)) if i != NONE_ID])


def nb201_cells(X: Any, where: str) -> np.ndarray:
    """The ``(n, 6)`` cells of an NB201 cell matrix ``X``; ``ValueError`` naming what is wrong."""
    matrix = np.asarray(X)
    if matrix.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected integer cell values, got dtype {matrix.dtype}")
    if matrix.dtype.kind == "f" and not (np.isfinite(matrix).all() and (matrix == np.round(matrix)).all()):
        raise ValueError(f"{where}: an NB201 cell matrix holds integers (found fractional or non-finite values)")
    return _NB201.from_matrix(matrix.astype(np.int64), where=where).ops


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
        nb201_cells(X, "NB201Features.fit X")
        self.n_features_in_ = 1 + NUM_EDGES
        return self

    def transform(self, X) -> np.ndarray:
        """The ``(n, 25)`` one-hot or ``(n, 7)`` index features of ``X``, as floats."""
        check_is_fitted(self)
        ops = nb201_cells(X, "NB201Features X")
        if self.encoding == "index":
            return _NB201.to_matrix(ops).astype(np.float64)
        onehot = (ops[:, :, None] == NB201_ONEHOT_OPERATORS).reshape(len(ops), -1)
        return np.concatenate([onehot, count_operators(ops)[:, None]], axis=1).astype(np.float64)

