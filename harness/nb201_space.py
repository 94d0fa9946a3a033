"""The NAS-Bench-201 topology space: 6 edges, 5 operators, 5**6 = 15,625 cells.

A cell is a DAG on four nodes; every edge ``j -> i`` (``j < i``) carries one
operator, and ``none`` removes the edge. The benchmark writes a cell as::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

one ``|``-delimited group per node 1, 2, 3, in which ``op~j`` is the edge
from node ``j``. Here a cell is an ``int8`` vector of 6 operator ids, one per
edge in that order (:data:`NB201_EDGES`), with ids indexing
:data:`NB201_OPERATORS` (the benchmark's own operator order).

Cells are numbered by their *key*, the base-5 number of their operator ids
with edge 0 the most significant digit, so ``all_cells()[k]`` is the cell of
key ``k``. The key is this module's numbering, not the benchmark's ``idx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, cast, overload

import numpy as np
import pandas as pd

#: The benchmark's operators; a cell stores the position in this tuple.
NB201_OPERATORS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)

#: Id of ``none``, the operator that removes an edge.
NONE_ID = NB201_OPERATORS.index("none")

#: ``(source, target)`` node of each edge, in the order of the cell string.
NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))

NUM_EDGES = len(NB201_EDGES)
#: Nodes with incoming edges (1, 2, 3): the '+'-separated groups of the cell string.
NUM_TARGET_NODES = len({target for _, target in NB201_EDGES})
NUM_NB201_OPERATORS = len(NB201_OPERATORS)

_OPERATOR_ID = {name: i for i, name in enumerate(NB201_OPERATORS)}
_DIGIT_WEIGHTS = NUM_NB201_OPERATORS ** np.arange(NUM_EDGES - 1, -1, -1, dtype=np.int64)


def count_operators(ops: np.ndarray) -> np.ndarray:
    """Non-``none`` operators per cell of an ``(n, 6)`` array (the "block count" of a cell)."""
    return (np.asarray(ops) != NONE_ID).sum(axis=-1)


@dataclass(frozen=True, eq=False)
class NB201Batch:
    """``n`` NAS-Bench-201 cells: ``ops`` is an ``(n, 6)`` int8 array of operator ids per edge.

    The batch type the ``nb201`` backend evaluates; build it with
    :meth:`NB201Space.batch`, which validates it.
    """

    ops: np.ndarray

    def __len__(self) -> int:
        return int(self.ops.shape[0])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The ``(n, 6)`` operator ids, so array code (keys, matrices, numpy tests) reads a batch as is."""
        return self.ops if dtype is None else self.ops.astype(dtype)

    @overload
    def __getitem__(self, index: int | np.integer) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice | np.ndarray | Sequence[int] | Sequence[bool]) -> "NB201Batch": ...

    def __getitem__(self, index):
        """One cell's ``(6,)`` ids for an integer; a sub-batch (like :meth:`take`) otherwise."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            return self.ops[index]
        if isinstance(index, (slice, np.ndarray, list, tuple, range)):
            positions = index if isinstance(index, slice) else np.asarray(index)
            return self.take(positions if isinstance(index, slice) or positions.size
                             else positions.astype(np.intp))
        raise TypeError(f"NB201Batch indices must be integers, slices, masks or position arrays, "
                        f"got {type(index).__name__}")

    @property
    def num_blocks(self) -> np.ndarray:
        """Non-``none`` operators per cell, the stand-in for a PNAS cell's block count."""
        return count_operators(self.ops).astype(np.int8)

    def take(self, index: np.ndarray | Sequence[int] | slice) -> "NB201Batch":
        """The sub-batch at ``index`` (integer positions, a boolean mask or a slice)."""
        return NB201Batch(self.ops[index])

    @staticmethod
    def concat(batches: Sequence["NB201Batch"]) -> "NB201Batch":
        """One batch holding the cells of ``batches`` in order."""
        return NB201Batch(np.concatenate([np.asarray(b.ops, np.int8).reshape(-1, NUM_EDGES) for b in batches]))


@dataclass(frozen=True)
class NB201Space:
    """The NAS-Bench-201 topology search space (all arrays are ``(n, 6)`` operator ids).

    It implements :class:`harness.search_space.SearchSpace`, so the searches run on it: the
    operator count (non-``none`` edges, 0..6) plays the block count, the one-operator cells are
    the first step's cells, and one step of expansion puts an operator on one ``none`` edge.
    """

    name: str = "nb201"
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def num_cells(self) -> int:
        """Number of cells, ``5**6 = 15625``."""
        return NUM_NB201_OPERATORS**NUM_EDGES

    @property
    def max_blocks(self) -> int:
        """Largest operator count of a cell (6, every edge used): the searches' number of steps."""
        return NUM_EDGES

    def settings(self) -> dict[str, Any]:
        """What identifies the space in a search's ``search.json``."""
        return {"space": self.name, "max_blocks": self.max_blocks}

    def num_unique_cells(self, b: int) -> int:
        """Cells with exactly ``b`` non-``none`` operators: ``C(6, b) * 4**b``."""
        self._check_size(b)
        return math.comb(NUM_EDGES, b) * (NUM_NB201_OPERATORS - 1) ** b

    # ------------------------------------------------------------------ protocol batches
    def empty_batch(self) -> NB201Batch:
        """A batch with no cells."""
        return NB201Batch(np.zeros((0, NUM_EDGES), np.int8))

    def empty_cells(self, n: int = 1) -> NB201Batch:
        """``n`` copies of the all-``none`` cell (0 operators, POPNAS's initial-thrust row)."""
        return NB201Batch(np.full((n, NUM_EDGES), NONE_ID, np.int8))

    def initial_cells(self) -> NB201Batch:
        """The 24 one-operator cells, edge by edge, operators in the benchmark's order."""
        return self.expand(self.empty_cells(1))

    def concat(self, batches: Sequence[NB201Batch]) -> NB201Batch:
        """One batch holding the cells of ``batches`` in order."""
        return NB201Batch.concat(batches)

    def unique(self, cells: NB201Batch) -> NB201Batch:
        """``cells`` without duplicates, first occurrences kept in their order."""
        _, first = np.unique(self.keys(cells), return_index=True)
        return cells.take(np.sort(first))

    def expand(self, cells: NB201Batch, dedupe: bool = True) -> NB201Batch:
        """All children of ``cells`` with one operator more: every ``none`` edge gets every operator.

        Children come parent by parent, edge by edge, operator by operator
        (a fixed order); with ``dedupe`` duplicates are removed keeping first
        occurrences. Parents without a ``none`` edge are an error.
        """
        ops = _ops_array(cells)
        self.validate(ops, where="expand() parents")
        full = count_operators(ops) >= NUM_EDGES
        if full.any():
            i = int(np.flatnonzero(full)[0])
            raise ValueError(f"cannot expand cell {self.format(ops[i])!r}: it has no 'none' edge left")
        operators = np.array([o for o in range(NUM_NB201_OPERATORS) if o != NONE_ID], np.int8)
        # (parent, edge, operator) -> child; keep the rows whose edge was 'none' in the parent
        children = np.repeat(np.repeat(ops[:, None, :], NUM_EDGES, axis=1)[:, :, None, :], len(operators), axis=2)
        edge = np.arange(NUM_EDGES)
        children[:, edge, :, edge] = operators
        free = np.broadcast_to((ops == NONE_ID)[:, :, None], children.shape[:3])
        out = NB201Batch(children[free].reshape(-1, NUM_EDGES).astype(np.int8))
        return self.unique(out) if dedupe else out

    def mutate(self, cells: NB201Batch, rng: np.random.Generator) -> NB201Batch:
        """Each cell with the operator of one uniformly drawn edge changed to another (``none`` included).

        The operator count may go up or down by one, or stay.
        """
        ops = np.array(_ops_array(cells), dtype=np.int8)
        n = len(ops)
        edge = rng.integers(0, NUM_EDGES, size=n)
        # a uniform draw among the 4 other operators: skip over the current one
        draw = rng.integers(0, NUM_NB201_OPERATORS - 1, size=n)
        current = ops[np.arange(n), edge]
        ops[np.arange(n), edge] = np.where(draw >= current, draw + 1, draw)
        return NB201Batch(ops)

    def _check_size(self, b: int) -> None:
        if not isinstance(b, (int, np.integer)) or not 0 <= b <= NUM_EDGES:
            raise ValueError(f"operator count {b!r} out of range 0..{NUM_EDGES}")

    # ------------------------------------------------------------------ keys and enumeration
    def keys(self, ops: np.ndarray | NB201Batch) -> np.ndarray:
        """The int64 key of every cell (base-5 number of its ids, edge 0 most significant)."""
        return _ops_array(ops).astype(np.int64) @ _DIGIT_WEIGHTS

    def from_keys(self, keys: np.ndarray) -> np.ndarray:
        """The ``(n, 6)`` int8 cells of ``keys`` (the inverse of :meth:`keys`)."""
        keys = np.asarray(keys, dtype=np.int64)
        bad = (keys < 0) | (keys >= self.num_cells)
        if bad.any():
            raise ValueError(
                f"cell key {int(keys[bad][0])} is outside 0..{self.num_cells - 1}"
            )
        return ((keys[:, None] // _DIGIT_WEIGHTS) % NUM_NB201_OPERATORS).astype(np.int8)

    def all_cells(self) -> np.ndarray:
        """All 15,625 cells as an ``(15625, 6)`` int8 array, row ``k`` being the cell of key ``k``."""
        return self.from_keys(np.arange(self.num_cells))

    def sample(self, n: int, blocks: int | None = None, seed: Any = 0, replace: bool = False) -> NB201Batch:
        """``n`` uniformly drawn cells with ``blocks`` non-``none`` operators (``None``: any number).

        Distinct (so ``n`` at most the number of such cells) unless ``replace``.
        """
        if n < 0:
            raise ValueError(f"sample size n must be >= 0, got {n}")
        if blocks is None:
            pool = np.arange(self.num_cells)
        else:
            self._check_size(blocks)
            pool = np.flatnonzero(self._counts() == blocks)
        if not replace and n > len(pool):
            raise ValueError(f"cannot draw {n} distinct cells: the space has only {len(pool)} "
                             f"with {'any number of' if blocks is None else blocks} operators")
        keys = pool[np.random.default_rng(seed).choice(len(pool), size=n, replace=replace)]
        return NB201Batch(self.from_keys(keys))

    def _counts(self) -> np.ndarray:
        """Operator count of every cell, position = key."""
        if "counts" not in self._cache:
            self._cache["counts"] = count_operators(self.all_cells())
        return self._cache["counts"]

    def num_blocks(self, ops: np.ndarray | NB201Batch) -> np.ndarray:
        """Non-``none`` operators per cell (used as the block count in regressor studies)."""
        return count_operators(_ops_array(ops))

    # ------------------------------------------------------------------ text form
    def format(self, ops: Sequence[int] | np.ndarray | NB201Batch) -> str | list[str]:
        """The benchmark's string of one cell (6 operator ids), or the list of a batch's strings."""
        if isinstance(ops, NB201Batch):
            return self.format_array(ops).tolist()
        return str(self.format_array(np.asarray(ops).reshape(1, NUM_EDGES))[0])

    def format_array(self, ops: np.ndarray | NB201Batch) -> np.ndarray:
        """The benchmark's strings of an ``(n, 6)`` array or batch, as an object array (vectorised)."""
        ops = _ops_array(ops)
        self.validate(ops, where="cells to format")
        names = np.array(NB201_OPERATORS, dtype=object)
        text = np.full(len(ops), "|", dtype=object)
        for edge, (source, _) in enumerate(NB201_EDGES):
            opens_node = edge > 0 and source == 0  # an edge from node 0 starts its target's '+' group
            text = text + ("+|" if opens_node else "") + names[ops[:, edge]] + f"~{source}|"
        return text

    def parse(self, text: str) -> np.ndarray:
        """The ``(6,)`` int8 cell written as ``text``; a ``ValueError`` naming the bad token."""
        if not isinstance(text, str):
            raise TypeError(f"a NAS-Bench-201 cell must be a str, got {type(text).__name__}: {text!r}")
        groups = text.strip().split("+")
        if len(groups) != NUM_TARGET_NODES:
            raise ValueError(
                f"malformed NAS-Bench-201 cell {text!r}: expected 3 '+'-separated node groups "
                "like '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|'"
            )
        ops = []
        for node, group in enumerate(groups, start=1):
            tokens = group.split("|")
            if len(tokens) != node + 2 or tokens[0] or tokens[-1]:
                raise ValueError(
                    f"malformed group {group!r} of node {node} in NAS-Bench-201 cell {text!r}: "
                    f"expected {node} '|'-delimited 'op~source' tokens"
                )
            for source, token in enumerate(tokens[1:-1]):
                name, tilde, origin = token.partition("~")
                if not tilde or origin != str(source):
                    raise ValueError(
                        f"malformed token {token!r} in NAS-Bench-201 cell {text!r}: "
                        f"expected 'op~{source}' (the edge from node {source} into node {node})"
                    )
                if name not in _OPERATOR_ID:
                    raise ValueError(
                        f"unknown operator {name!r} in token {token!r} of NAS-Bench-201 cell "
                        f"{text!r}; known operators: {', '.join(NB201_OPERATORS)}"
                    )
                ops.append(_OPERATOR_ID[name])
        return np.array(ops, dtype=np.int8)

    def parse_many(self, texts: Sequence[str], where: Callable[[int], str] | None = None) -> NB201Batch:
        """The batch of ``texts``: a hash join on the canonical strings, :meth:`parse` otherwise.

        ``where(i)`` names item ``i`` in error messages (default ``"cell i"``).
        """
        array = np.asarray(texts, dtype=object).reshape(-1)
        keys = self._text_index().get_indexer(array)
        for i in np.flatnonzero(keys < 0):
            # not the canonical spelling (e.g. surrounding spaces): parse it, or name the bad token
            try:
                keys[i] = self.keys(self.parse(array[i])[None])[0]
            except (ValueError, TypeError) as err:
                raise ValueError(f"{where(int(i)) if where else f'cell {i}'}: {err}") from None
        return NB201Batch(self.from_keys(keys))

    def _text_index(self) -> pd.Index:
        """The canonical string of every cell, position = key."""
        if "text" not in self._cache:
            self._cache["text"] = pd.Index(self.format_array(self.all_cells()))
        return self._cache["text"]

    # ------------------------------------------------------------------ batches and matrices
    def batch(self, cells: NB201Batch | np.ndarray | Sequence[str | Sequence[int]]) -> NB201Batch:
        """A validated batch from a batch, an ``(n, 6)`` array, strings or id sequences."""
        if isinstance(cells, NB201Batch):
            ops = cells.ops
        elif isinstance(cells, np.ndarray):
            ops = cells
        elif isinstance(cells, str):
            raise TypeError(f"pass a list of cell strings, not the single str {cells!r}")
        elif len(cells) and all(isinstance(cell, str) for cell in cells):
            ops = self.parse_many(cast("list[str]", list(cells))).ops
        else:
            ops = np.array([list(cell) for cell in cells], dtype=np.int64).reshape(-1, NUM_EDGES)
        if ops.dtype.kind not in "iu":
            raise ValueError(f"NAS-Bench-201 cells: operator ids must be integers, got dtype {ops.dtype}")
        self.validate(ops, where="NAS-Bench-201 cells")
        return NB201Batch(ops.astype(np.int8))

    def to_matrix(self, ops: np.ndarray | NB201Batch) -> np.ndarray:
        """``(n, 7)`` int16 matrix for scikit-learn: the non-``none`` count, then the 6 operator ids."""
        ops = _ops_array(ops)
        return np.concatenate(
            [count_operators(ops).astype(np.int16)[:, None], ops.astype(np.int16)], axis=1
        )

    def from_matrix(self, matrix: np.ndarray, where: str = "NAS-Bench-201 matrix") -> NB201Batch:
        """The batch of a :meth:`to_matrix` matrix; validated."""
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != 1 + NUM_EDGES:
            raise ValueError(f"{where}: expected shape (n, {1 + NUM_EDGES}), got {matrix.shape}")
        ops = matrix[:, 1:]
        self.validate(ops, where=where)
        mismatch = matrix[:, 0] != count_operators(ops)
        if mismatch.any():
            i = int(np.flatnonzero(mismatch)[0])
            raise ValueError(
                f"{where}: row {i} says {matrix[i, 0]} operators but its cell has "
                f"{count_operators(ops[i])} non-none operators"
            )
        return NB201Batch(ops.astype(np.int8))

    def validate(self, ops: np.ndarray | NB201Batch, where: str = "cells") -> None:
        """Raise ``ValueError`` naming the first row of ``ops`` that is not a cell."""
        ops = _ops_array(ops)
        if ops.ndim != 2 or ops.shape[1] != NUM_EDGES:
            raise ValueError(f"{where}: expected an array of shape (n, {NUM_EDGES}), got {ops.shape}")
        bad = (ops < 0) | (ops >= NUM_NB201_OPERATORS)
        if bad.any():
            i, edge = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"{where}: row {i} has operator id {int(ops[i, edge])} on edge {edge}; "
                f"ids are 0..{NUM_NB201_OPERATORS - 1} ({', '.join(NB201_OPERATORS)})"
            )


def _ops_array(ops: np.ndarray | NB201Batch) -> np.ndarray:
    return ops.ops if isinstance(ops, NB201Batch) else np.asarray(ops)
