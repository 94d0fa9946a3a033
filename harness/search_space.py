"""The search-space protocol the searches, predictors and time regressors are written against.

Three spaces implement it: :class:`harness.space.CellSpace` (PNAS's and
POPNAS's cells of blocks), :class:`harness.nb201_space.NB201Space`
(NAS-Bench-201's 6-edge cells) and :class:`harness.nb101_space.NB101Space`
(NAS-Bench-101's graph cells; size = operator vertices). What the searches need of a space is:

* text: ``parse_many`` (texts -> batch) and ``format`` / ``format_array``
  (batch -> canonical texts; a cell's text is its identity in every table);
* a batch type (:class:`CellBatchLike`) with ``len``, ``take``, slicing and
  ``num_blocks``, the *size* of each cell (PNAS: blocks; NB201: non-``none``
  operators) that indexes a progressive search's steps ``1 .. max_blocks``,
  and ``num_unique_cells(b)``, how many distinct cells a size has;
* construction: ``initial_cells`` (the first step's cells, every cell of
  size 1), ``empty_cells`` (size 0, POPNAS's initial-thrust row),
  ``empty_batch``, ``concat``, ``unique``, ``keys``;
* moves: ``expand`` (every child one size larger: PNAS adds a block, NB201
  puts an operator on one ``none`` edge), ``sample`` (uniform cells of a
  size, or of any size with ``blocks=None``) and ``mutate`` (one local change,
  regularized evolution's move);
* ``to_matrix``: the integer matrix scikit-learn estimators (time
  regressors, tabular predictors) take as ``X``;
* ``validate`` and ``settings`` (what a search's ``search.json`` records).

Models are not part of a space: :func:`accuracy_predictor` and
:func:`time_regressor` build the ones that read a given space's cells.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class CellBatchLike(Protocol):
    """A batch of cells of one space: sized, sliceable, with a size per cell."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> Any: ...

    def take(self, index: Any) -> "CellBatchLike":
        """The sub-batch at integer positions, a boolean mask or a slice."""

    @property
    def num_blocks(self) -> np.ndarray:
        """The size of every cell (blocks, or non-``none`` operators)."""


@runtime_checkable
class SearchSpace(Protocol):
    """What a space offers the searches (see the module docstring)."""

    name: str

    @property
    def max_blocks(self) -> int:
        """The largest cell size: a progressive search's number of steps."""

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings that identify the space."""

    def num_unique_cells(self, b: int) -> int:
        """The number of distinct cells of size ``b``."""

    def parse_many(self, texts: Sequence[str]) -> CellBatchLike:
        """The validated batch written as ``texts``."""

    def format(self, cells: Any) -> Any:
        """Canonical text of one cell, or the list of a batch's texts."""

    def format_array(self, cells: CellBatchLike) -> np.ndarray:
        """Canonical texts of a batch as an object array."""

    def keys(self, cells: CellBatchLike) -> np.ndarray:
        """A key per cell, equal exactly when the cells are equal."""

    def validate(self, cells: CellBatchLike, where: str = "cells") -> None:
        """Raise ``ValueError`` naming the first invalid cell."""

    def empty_batch(self) -> CellBatchLike:
        """A batch with no cells."""

    def empty_cells(self, n: int = 1) -> CellBatchLike:
        """``n`` copies of the size-0 cell."""

    def initial_cells(self) -> CellBatchLike:
        """Every distinct cell of size 1, in a fixed order."""

    def concat(self, batches: Sequence[CellBatchLike]) -> CellBatchLike:
        """One batch of ``batches``' cells in order."""

    def unique(self, cells: CellBatchLike) -> CellBatchLike:
        """``cells`` without duplicates, first occurrences kept in order."""

    def expand(self, cells: CellBatchLike, dedupe: bool = True) -> CellBatchLike:
        """Every child one size larger of every cell, parent by parent."""

    def sample(self, n: int, blocks: int | None, seed: Any = 0, replace: bool = False) -> CellBatchLike:
        """``n`` distinct uniform cells of size ``blocks`` (``None``: uniform over the whole space)."""

    def mutate(self, cells: CellBatchLike, rng: np.random.Generator) -> CellBatchLike:
        """Each cell changed in one place, drawn from ``rng``."""

    def to_matrix(self, cells: CellBatchLike) -> np.ndarray:
        """The integer feature matrix scikit-learn estimators take as ``X``."""


def accuracy_predictor(space: SearchSpace, name: str, *, seed: int = 0, **options: Any):
    """The unfitted accuracy predictor ``name`` for ``space``'s cells (fits and predicts on batches).

    On a :class:`~harness.space.CellSpace`: PNAS's torch models
    (:func:`harness.predictors.make_predictor`, sized by the space); on an
    :class:`~harness.nb201_space.NB201Space`: the tabular
    :class:`harness.predictors.NB201Predictor`; on an
    :class:`~harness.nb101_space.NB101Space`: the same tabular models on
    NB101 features (:class:`harness.nb101_features.NB101Predictor`). All have ``get_state`` /
    ``set_state`` for the searches' checkpoints.
    """
    from harness.nb101_features import NB101Predictor
    from harness.nb101_space import NB101Space
    from harness.nb201_space import NB201Space
    from harness.predictors import NB201Predictor, make_predictor
    from harness.space import CellSpace

    if isinstance(space, CellSpace):
        return make_predictor(name, max_blocks=space.max_blocks, lookback=space.lookback, seed=seed, **options)
    if isinstance(space, NB201Space):
        return NB201Predictor(model=name, seed=seed, **options)
    if isinstance(space, NB101Space):
        return NB101Predictor(model=name, seed=seed, **options)
    raise TypeError(f"no accuracy predictor for the space {space!r}")


def time_regressor(space: SearchSpace, integer_features: bool = False):
    """POPNAS's default time (cost) regressor for ``space``'s :meth:`~SearchSpace.to_matrix` rows.

    ``integer_features`` adds the POPNAS v1 code's truncation of the predicted cells' features
    (:class:`~harness.encodings.TruncatedPredictionFeatures`; PNAS cells only).

    On a :class:`~harness.space.CellSpace`: POPNAS's final model (NNLS,
    dynamic re-index, no inputs, sliding blocks). On an
    :class:`~harness.nb201_space.NB201Space`: NNLS on the one-hot
    (edge, operator) features, the additive model with one non-negative cost
    per operator on each edge. On an :class:`~harness.nb101_space.NB101Space`:
    NNLS on the adjacency-plus-operators features, one non-negative cost per
    edge and per (vertex, operator).
    """
    import dataclasses

    from harness.encodings import PAPER_VARIANTS
    from harness.nb101_features import nb101_time_regressor
    from harness.nb101_space import NB101Space
    from harness.nb201_space import NB201Space
    from harness.regressors import make_time_regressor, nb201_time_regressor
    from harness.space import CellSpace

    if isinstance(space, CellSpace):
        encoding = dataclasses.replace(PAPER_VARIANTS["dynamic_without_inputs"],
                                       integer_prediction_features=bool(integer_features))
        return make_time_regressor("nnls", encoding, max_blocks=space.max_blocks, lookback=space.lookback)
    if integer_features:
        raise ValueError(f"integer_time_features applies to PNAS/POPNAS cells only, not to {space!r}")
    if isinstance(space, NB201Space):
        return nb201_time_regressor("nnls")
    if isinstance(space, NB101Space):
        return nb101_time_regressor("nnls")
    raise TypeError(f"no time regressor for the space {space!r}")
