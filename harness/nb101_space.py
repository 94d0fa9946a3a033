"""NAS-Bench-101-style graph cells (Ying et al. 2019): a DAG of at most 7 vertices and 9 edges.

A cell is an upper-triangular adjacency matrix over its vertices plus the
operator of each vertex: vertex 0 is ``input``, the last vertex is
``output``, and every inner vertex carries ``conv3x3-bn-relu``,
``conv1x1-bn-relu`` or ``maxpool3x3``. A cell is valid when it has at most
``max_vertices`` vertices, a path from input to output and, once pruned, at
most ``max_edges`` edges. *Pruning* (NAS-Bench-101's ``ModelSpec``) removes
the vertices that lie on no input-output path, with their edges.

Storage
    A :class:`NB101Batch` holds ``adjacency`` ``(n, V, V)`` bool and ``ops``
    ``(n, V)`` int8 with ``V = max_vertices`` slots: slot 0 is the input,
    slot ``V - 1`` the output, the ``k`` inner vertices occupy slots
    ``1 .. k`` and the remaining slots are padding (operator
    :data:`PAD`, no edges). Batches are always pruned and *canonical*.

Size
    The protocol's size (``num_blocks``) is the number of operator vertices,
    ``k = vertices - 2``: the cell ``input -> output`` is size 0 (POPNAS's
    initial-thrust row), the three ``input -> op -> output`` chains with and
    without the ``input -> output`` edge are size 1, and 7-vertex cells are
    size 5. It orders cells exactly as the vertex count does, one step per
    vertex, so "fit on sizes up to s, predict s + 1" is the same split under
    either count; counting operator vertices is what gives the protocol its
    size-0 and size-1 cells.

Canonical form under isomorphism
    Two drawings of one cell (its inner vertices permuted) must get one key.
    Every inner vertex gets an isomorphism-invariant label: its depth (longest
    path from the input) and a colour from iterative vertex hashing in the
    Weisfeiler-Lehman style (start from the operator; each round hashes a
    vertex's colour with the multisets of its in- and out-neighbours'
    colours, :data:`WL_ROUNDS` rounds). Among the orderings of the inner
    vertices sorted by ``(depth, colour)`` (ties permuted every way; a
    depth-sorted order is topological, so the matrix stays upper triangular)
    the one with the smallest *code* is the canonical drawing; the code packs
    the upper triangle's bits and the inner operators into one int64, which
    is the cell's key. The labels only prune the orderings tried, so the key
    is exact: isomorphic cells get one key and different cells different
    keys whatever the hashing's collisions (a collision merges two colours
    and only widens a tie). Cells with all-distinct labels (most) need no
    search; ties try at most ``(V - 2)!`` orderings.

Text form (canonical; round-trips through :meth:`NB101Space.parse`)::

    input|conv3x3-bn-relu|maxpool3x3|output;0>1,0>2,1>3,2>3

the ``|``-separated operators of the vertices in canonical order, then the
edges ``source>target`` in that numbering. ``parse`` accepts any vertex
order and unpruned cells (it prunes and canonicalises, as NAS-Bench-101's
``ModelSpec`` does); so does :meth:`NB101Space.from_graphs`, the form of a
results table (adjacency matrices and operator lists).

Moves
    ``expand``: a child one size larger has a new operator vertex ``u`` with
    in-neighbours ``S`` and out-neighbours ``T`` such that the parent has
    every edge ``S x T`` and the child drops any subset of them; equivalently
    *bypassing* ``u`` (removing it and linking its inputs to its outputs)
    gives the parent back, as dropping a PNAS cell's last block does. Every
    cell of size ``k + 1`` is a child of some cell of size ``k`` (bypass its
    last inner vertex, whose only out-neighbour is the output), so repeated
    expansion of the size-0 cell enumerates the space; that is how
    :meth:`NB101Space.cells_of_size` (and so ``sample`` and
    ``num_unique_cells``) works. ``mutate`` changes one inner vertex's
    operator or adds or removes one edge.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

#: Vertex operators; a cell stores the position in this tuple (:data:`PAD` marks unused slots).
NB101_OPERATORS: tuple[str, ...] = ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")
INPUT, OUTPUT = 0, 4
#: Ids of the operators an inner vertex may carry.
INNER_OPERATORS: tuple[int, ...] = (1, 2, 3)
#: Operator id of an unused vertex slot.
PAD = np.int8(-1)

#: NAS-Bench-101's limits.
MAX_VERTICES = 7
MAX_EDGES = 9

#: Rounds of vertex hashing (a label then sees every vertex of a 7-vertex cell).
WL_ROUNDS = MAX_VERTICES

_OPERATOR_ID = {name: i for i, name in enumerate(NB101_OPERATORS)}
# canonicalisation works on chunks of cells, bounding its (chunk, orderings, V, V) temporaries
_CHUNK = 1 << 14


def _mix(x: np.ndarray, salt: int) -> np.ndarray:
    """A splitmix64-style 64-bit mixer of ``x`` (uint64, wrapping), different for each ``salt``."""
    x = x + np.uint64((0x9E3779B97F4A7C15 * (salt + 1)) % 2**64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True, eq=False)
class NB101Cell:
    """One cell of a batch (``batch[i]``): its ``(V, V)`` adjacency and ``(V,)`` operator ids."""

    adjacency: np.ndarray
    ops: np.ndarray

    @property
    def num_blocks(self) -> int:
        """Operator (inner) vertices."""
        return int((self.ops != PAD).sum()) - 2


@dataclass(frozen=True, eq=False)
class NB101Batch:
    """``n`` canonical NAS-Bench-101-style cells: ``adjacency`` ``(n, V, V)`` bool and ``ops`` ``(n, V)`` int8.

    Build it with :meth:`NB101Space.batch`, :meth:`NB101Space.parse_many`
    or :meth:`NB101Space.from_graphs`, which prune, canonicalise and
    validate; the module docstring gives the slot layout.
    """

    adjacency: np.ndarray
    ops: np.ndarray

    def __len__(self) -> int:
        return int(self.ops.shape[0])

    def __getitem__(self, index):
        """One :class:`NB101Cell` for an integer; a sub-batch (like :meth:`take`) otherwise."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer, slice, np.ndarray, list, tuple, range)):
            raise TypeError(f"NB101Batch indices must be integers, slices, masks or position arrays, "
                            f"got {type(index).__name__}")
        if isinstance(index, (int, np.integer)):
            return NB101Cell(self.adjacency[index], self.ops[index])
        if isinstance(index, slice):
            return self.take(index)
        positions = np.asarray(index)
        return self.take(positions if positions.size else positions.astype(np.intp))

    @property
    def num_blocks(self) -> np.ndarray:
        """Operator (inner) vertices per cell: the protocol's size, 0 .. ``V - 2``."""
        return (self.ops != PAD).sum(axis=1).astype(np.int8) - 2

    @property
    def num_vertices(self) -> np.ndarray:
        """Vertices per cell, input and output included (2 .. ``V``)."""
        return (self.ops != PAD).sum(axis=1).astype(np.int8)

    @property
    def num_edges(self) -> np.ndarray:
        """Edges per cell."""
        return self.adjacency.sum(axis=(1, 2)).astype(np.int8)

    def take(self, index: np.ndarray | Sequence[int] | slice) -> "NB101Batch":
        """The sub-batch at ``index`` (integer positions, a boolean mask or a slice)."""
        return NB101Batch(self.adjacency[index], self.ops[index])

    @staticmethod
    def concat(batches: Sequence["NB101Batch"]) -> "NB101Batch":
        """One batch holding the cells of ``batches`` in order (all of one slot count)."""
        return NB101Batch(np.concatenate([b.adjacency for b in batches]), np.concatenate([b.ops for b in batches]))


@dataclass(frozen=True)
class NB101Space:
    """NAS-Bench-101's cell space on the search-space protocol (see the module docstring).

    Parameters
    ----------
    max_vertices:
        at most this many vertices, input and output included (3..7; NAS-Bench-101: 7).
    max_edges:
        at most this many edges after pruning (NAS-Bench-101: 9).
    """

    max_vertices: int = MAX_VERTICES
    max_edges: int = MAX_EDGES
    name: str = "nb101"
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_vertices, int) or not 3 <= self.max_vertices <= MAX_VERTICES:
            raise ValueError(f"max_vertices must be an integer in 3..{MAX_VERTICES}, got {self.max_vertices!r}")
        if not isinstance(self.max_edges, int) or self.max_edges < 1:
            raise ValueError(f"max_edges must be a positive integer, got {self.max_edges!r}")

    # ------------------------------------------------------------------ protocol basics
    @property
    def max_blocks(self) -> int:
        """The largest size, ``max_vertices - 2`` operator vertices: a progressive search's steps."""
        return self.max_vertices - 2

    def settings(self) -> dict[str, Any]:
        """What identifies the space in a search's ``search.json``."""
        return {"space": self.name, "max_blocks": self.max_blocks, "max_vertices": self.max_vertices,
                "max_edges": self.max_edges}

    def num_unique_cells(self, b: int) -> int:
        """The number of distinct cells (up to isomorphism) of size ``b`` (enumerated once, then cached)."""
        return len(self.cells_of_size(b))

    def empty_batch(self) -> NB101Batch:
        """A batch with no cells."""
        v = self.max_vertices
        return NB101Batch(np.zeros((0, v, v), bool), np.zeros((0, v), np.int8))

    def empty_cells(self, n: int = 1) -> NB101Batch:
        """``n`` copies of the size-0 cell ``input -> output``."""
        v = self.max_vertices
        adjacency = np.zeros((n, v, v), bool)
        adjacency[:, 0, v - 1] = True
        ops = np.full((n, v), PAD, np.int8)
        ops[:, 0], ops[:, v - 1] = INPUT, OUTPUT
        return NB101Batch(adjacency, ops)

    def initial_cells(self) -> NB101Batch:
        """Every size-1 cell (three operators, with and without the input-output edge), by key."""
        return self.cells_of_size(1)

    def concat(self, batches: Sequence[NB101Batch]) -> NB101Batch:
        """One batch holding the cells of ``batches`` in order."""
        return NB101Batch.concat([self.empty_batch(), *batches])

    def unique(self, cells: NB101Batch) -> NB101Batch:
        """``cells`` without duplicates, first occurrences kept in their order."""
        _, first = np.unique(self.keys(cells), return_index=True)
        return cells.take(np.sort(first))

    def keys(self, cells: NB101Batch) -> np.ndarray:
        """The int64 code of every (canonical) cell: equal exactly when the cells are isomorphic."""
        return self._codes(cells.adjacency[:, None], cells.ops[:, None])[:, 0]

    def _check_size(self, b: Any) -> None:
        if not isinstance(b, (int, np.integer)) or isinstance(b, bool) or not 0 <= b <= self.max_blocks:
            raise ValueError(f"cell size {b!r} out of range 0..{self.max_blocks} (operator vertices)")

    # ------------------------------------------------------------------ canonical form
    def _codes(self, adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
        """Codes of ``(..., V, V)`` upper-triangular drawings: upper-triangle bits, then inner operators."""
        v = self.max_vertices
        rows, cols = np.triu_indices(v, 1)
        bits = adjacency[..., rows, cols].astype(np.int64)
        code = bits @ (np.int64(1) << np.arange(len(rows) - 1, -1, -1, dtype=np.int64))
        inner = ops[..., 1 : v - 1].astype(np.int64)
        inner = np.where(inner < 0, 0, inner)  # padding 0, operators 1..3: two bits a slot
        return (code << (2 * (v - 2))) + inner @ (np.int64(4) ** np.arange(v - 3, -1, -1, dtype=np.int64))

    def _canonical(self, adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical drawings of pruned DAGs given in any slot order (input 0, output ``V - 1``)."""
        out_adj, out_ops = np.empty_like(adjacency), np.empty_like(ops)
        for start in range(0, len(ops), _CHUNK):
            part = slice(start, start + _CHUNK)
            order = self._canonical_order(adjacency[part], ops[part])
            out_adj[part] = np.take_along_axis(np.take_along_axis(adjacency[part], order[:, :, None], 1),
                                               order[:, None, :], 2)
            out_ops[part] = np.take_along_axis(ops[part], order, 1)
        return out_adj, out_ops

    def _labels(self, adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per vertex: the depth (longest path from the input; padding: ``V``) and the hashed colour."""
        n, v = ops.shape
        depth = np.zeros((n, v), np.int64)
        for _ in range(v - 1):  # longest-path relaxation, any slot order
            depth = np.where(adjacency, depth[:, :, None] + 1, 0).max(axis=1)
        depth = np.where(ops == PAD, v, depth)
        a = adjacency.astype(np.uint64)
        colour = _mix(ops.astype(np.int64).astype(np.uint64), 0)
        for _ in range(WL_ROUNDS):
            # a sum of mixed colours hashes the multiset of neighbours' colours (order-free)
            incoming = np.einsum("nuv,nu->nv", a, _mix(colour, 1))
            outgoing = np.einsum("nvw,nw->nv", a, _mix(colour, 2))
            colour = _mix(colour ^ _mix(incoming, 3) ^ _mix(outgoing, 4), 5)
        return depth, colour

    def _canonical_order(self, adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
        """``(n, V)`` slot of each canonical position (see the module docstring)."""
        n, v = ops.shape
        depth, colour = self._labels(adjacency, ops)
        d, c = depth[:, 1 : v - 1], colour[:, 1 : v - 1]
        less = (d[:, :, None] < d[:, None, :]) | ((d[:, :, None] == d[:, None, :]) & (c[:, :, None] < c[:, None, :]))
        rank = less.sum(axis=1)  # rank[i, s]: inner vertices with a smaller label than slot s
        inner = np.argsort(rank, axis=1, kind="stable")
        sorted_rank = np.take_along_axis(rank, inner, 1)
        tied = (np.diff(sorted_rank, axis=1) == 0) & (np.take_along_axis(d, inner, 1)[:, 1:] < v)
        order = np.concatenate([np.zeros((n, 1), np.intp), inner + 1, np.full((n, 1), v - 1)], axis=1)
        ties = np.flatnonzero(tied.any(axis=1))
        if ties.size:
            order[ties] = self._break_ties(adjacency[ties], ops[ties], rank[ties])
        return order

    def _break_ties(self, adjacency: np.ndarray, ops: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """For cells with tied labels: the label-sorted ordering of smallest code."""
        v = ops.shape[1]
        perms = self._inner_permutations()
        ranks = rank[:, perms]  # (n, P, V-2)
        consistent = (np.diff(ranks, axis=2) >= 0).all(axis=2)
        slots = np.concatenate([np.zeros((len(perms), 1), np.intp), perms + 1,
                                np.full((len(perms), 1), v - 1)], axis=1)
        drawn = adjacency[:, slots[:, :, None], slots[:, None, :]]  # (n, P, V, V)
        codes = self._codes(drawn, ops[:, slots])
        codes = np.where(consistent, codes, np.iinfo(np.int64).max)
        return slots[codes.argmin(axis=1)]

    def _inner_permutations(self) -> np.ndarray:
        if "perms" not in self._cache:
            self._cache["perms"] = np.array(list(itertools.permutations(range(self.max_vertices - 2))), np.intp)
        return self._cache["perms"]

    # ------------------------------------------------------------------ building and checking
    def from_graphs(self, adjacency: Sequence, ops: Sequence, where: Callable[[int], str] | None = None,
                    columns: tuple[str, str] | None = None) -> NB101Batch:
        """The canonical batch of cells given as adjacency matrices and operator lists (any vertex order).

        ``adjacency[i]`` is a square 0/1 matrix (nested lists or an array),
        upper triangular, and ``ops[i]`` its vertices' operator names
        (``input`` first, ``output`` last). Cells are pruned and
        canonicalised; ``ValueError`` names the cell (``where(i)``, default
        ``"cell i"``) and the bad entry, and with ``columns`` (the names of the
        adjacency's and the operators' columns of a table) the column it is in.
        """
        def label(i: int, part: int) -> str:
            text = where(i) if where else f"cell {i}"
            return f"{text}, column {columns[part]!r}" if columns else text

        if len(adjacency) != len(ops):
            raise ValueError(f"from_graphs: {len(adjacency)} adjacency matrices but {len(ops)} operator lists")
        v = self.max_vertices
        adj = np.zeros((len(ops), v, v), bool)
        ids = np.full((len(ops), v), PAD, np.int8)
        for i, (matrix, names) in enumerate(zip(adjacency, ops)):
            try:
                ids[i], slots = self._operator_ids(names)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{label(i, 1)}: {err}") from None
            try:
                adj[i] = self._adjacency(matrix, slots)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{label(i, 0)}: {err}") from None
        return self._build(adj, ids, lambda i: label(i, 0))

    def _operator_ids(self, names: Any) -> tuple[np.ndarray, np.ndarray]:
        """One cell's ``(V,)`` operator ids (the output moved to the last slot) and each vertex's slot."""
        if isinstance(names, str) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"operators must be a list of names, got {names!r}")
        m = len(names)
        if not 2 <= m <= self.max_vertices:
            raise ValueError(f"{m} vertices; a cell has 2..{self.max_vertices} (input and output included)")
        for position, name in enumerate(names):
            expected = "input" if position == 0 else "output" if position == m - 1 else None
            if expected and name != expected:
                raise ValueError(f"vertex {position} is {name!r}; the {'first' if position == 0 else 'last'} "
                                 f"vertex must be {expected!r}")
            if not expected and (name not in _OPERATOR_ID or _OPERATOR_ID[name] not in INNER_OPERATORS):
                raise ValueError(f"unknown operator {name!r} at vertex {position}; inner vertices are "
                                 f"{', '.join(NB101_OPERATORS[o] for o in INNER_OPERATORS)}")
        slots = np.r_[np.arange(m - 1), self.max_vertices - 1]
        ids = np.full(self.max_vertices, PAD, np.int8)
        ids[slots] = [_OPERATOR_ID[name] for name in names]
        return ids, slots

    def _adjacency(self, matrix: Any, slots: np.ndarray) -> np.ndarray:
        """One cell's ``(V, V)`` slot adjacency (unpruned) from its square 0/1 matrix."""
        m = len(slots)
        try:
            matrix = np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"the adjacency {matrix!r} is not a matrix of numbers") from None
        if matrix.shape != (m, m):
            raise ValueError(f"the adjacency has shape {matrix.shape} but there are {m} operators")
        bad = ~np.isin(matrix, (0.0, 1.0))
        if bad.any():
            i, j = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(f"adjacency entry [{i}][{j}] is {matrix[i, j]!r}; entries are 0 or 1")
        lower = np.tril(matrix).astype(bool)
        if lower.any():
            i, j = (int(x) for x in np.argwhere(lower)[0])
            raise ValueError(f"adjacency entry [{i}][{j}] is an edge from vertex {i} to vertex {j} <= {i}; "
                             "the matrix must be strictly upper triangular (edges go to later vertices)")
        adj = np.zeros((self.max_vertices, self.max_vertices), bool)
        adj[np.ix_(slots, slots)] = matrix.astype(bool)
        return adj

    def _build(self, adjacency: np.ndarray, ops: np.ndarray, where: Callable[[int], str] | None = None
               ) -> NB101Batch:
        """Prune, check and canonicalise slot arrays in any inner-slot order."""
        adjacency, ops = _prune(adjacency, ops)
        dead = ops[:, -1] == PAD
        if dead.any():
            i = int(np.flatnonzero(dead)[0])
            raise ValueError(f"{where(i) if where else f'cell {i}'}: no path from input to output")
        edges = adjacency.sum(axis=(1, 2))
        over = edges > self.max_edges
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise ValueError(f"{where(i) if where else f'cell {i}'}: {int(edges[i])} edges after pruning; "
                             f"a cell has at most {self.max_edges}")
        adjacency, ops = self._canonical(adjacency, ops)
        return NB101Batch(adjacency, ops)

    def batch(self, cells: NB101Batch | Sequence[NB101Cell | str]) -> NB101Batch:
        """A validated canonical batch from a batch, cells (``parse``'s) or cell texts."""
        if isinstance(cells, str):
            raise TypeError(f"pass a list of cell texts, not the single str {cells!r}")
        if not isinstance(cells, NB101Batch) and len(cells) and all(isinstance(c, NB101Cell) for c in cells):
            cells = NB101Batch(np.stack([c.adjacency for c in cells]), np.stack([c.ops for c in cells]))
        if isinstance(cells, NB101Batch):
            self.validate(cells, where="NAS-Bench-101 cells")
            return cells
        return self.parse_many(list(cells))

    def validate(self, cells: NB101Batch, where: str = "cells") -> None:
        """Raise ``ValueError`` naming the first cell of ``cells`` that is not a pruned canonical cell."""
        v = self.max_vertices
        if not isinstance(cells, NB101Batch):
            raise TypeError(f"{where}: expected an NB101Batch, got {type(cells).__name__}")
        if cells.adjacency.shape[1:] != (v, v) or cells.ops.shape[1:] != (v,):
            raise ValueError(f"{where}: expected slot arrays (n, {v}, {v}) and (n, {v}), got "
                             f"{cells.adjacency.shape} and {cells.ops.shape}")
        if not len(cells):
            return
        ops, adjacency = cells.ops, cells.adjacency
        inner = ops[:, 1:-1]
        problems = (
            ((ops[:, 0] != INPUT) | (ops[:, -1] != OUTPUT), "does not have input in slot 0 and output last"),
            (~np.isin(inner, (PAD, *INNER_OPERATORS)).all(axis=1), "has an unknown operator id"),
            ((np.diff((inner == PAD).astype(np.int8), axis=1) < 0).any(axis=1),
             "has an operator vertex after a padding slot"),
            (np.tril(adjacency).any(axis=(1, 2)),
             "has an edge that is not upper triangular"),
            (_edges_at_padding(adjacency, ops), "has an edge at a padding slot"),
            (cells.num_edges > self.max_edges, f"has more than {self.max_edges} edges"),
        )
        for bad, what in problems:
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{where}: cell {i} {what}")
        _, pruned_ops = _prune(adjacency, ops)
        off_path = (pruned_ops != ops).any(axis=1)
        if off_path.any():
            i = int(np.flatnonzero(off_path)[0])
            raise ValueError(f"{where}: cell {i} has vertices on no input-output path (prune it first)")
        canonical_adj, canonical_ops = self._canonical(adjacency, ops)
        moved = (canonical_ops != ops).any(axis=1) | (canonical_adj != adjacency).any(axis=(1, 2))
        if moved.any():
            i = int(np.flatnonzero(moved)[0])
            raise ValueError(f"{where}: cell {i} is not in canonical vertex order (build batches with "
                             "NB101Space.batch, parse_many or from_graphs)")

    # ------------------------------------------------------------------ text form
    def format(self, cells: NB101Batch | NB101Cell) -> str | list[str]:
        """The canonical text of one cell (``batch[i]``), or the list of a batch's texts."""
        if isinstance(cells, NB101Cell):
            return str(self.format_array(NB101Batch(cells.adjacency[None], cells.ops[None]))[0])
        return self.format_array(cells).tolist()

    def format_array(self, cells: NB101Batch) -> np.ndarray:
        """The canonical texts of a batch as an object array."""
        names = np.array(NB101_OPERATORS, dtype=object)
        texts = np.empty(len(cells), dtype=object)
        for i, (adjacency, ops) in enumerate(zip(cells.adjacency, cells.ops)):
            slots = np.flatnonzero(ops != PAD)  # canonical: input, inner 1..k, output
            sub = adjacency[np.ix_(slots, slots)]
            edges = ",".join(f"{s}>{t}" for s, t in zip(*np.nonzero(sub)))
            texts[i] = "|".join(names[ops[slots]]) + ";" + edges
        return texts

    def parse(self, text: str) -> NB101Cell:
        """The cell written as ``text`` (any vertex order; pruned and canonicalised)."""
        return self.parse_many([text])[0]

    def parse_many(self, texts: Sequence[str], where: Callable[[int], str] | None = None) -> NB101Batch:
        """The canonical batch of ``texts``; ``ValueError`` naming the text (``where(i)``) and the bad token."""
        matrices, names = [], []
        for i, text in enumerate(texts):
            try:
                matrix, ops = _parse_text(text)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{where(i) if where else f'cell {i}'}: {err}") from None
            matrices.append(matrix)
            names.append(ops)
        return self.from_graphs(matrices, names, where)

    def graphs(self, cells: NB101Batch) -> tuple[list[list[list[int]]], list[list[str]]]:
        """The compact adjacency matrices (JSON-ready lists) and operator lists of a batch's cells."""
        matrices, names = [], []
        for adjacency, ops in zip(cells.adjacency, cells.ops):
            slots = np.flatnonzero(ops != PAD)
            matrices.append(adjacency[np.ix_(slots, slots)].astype(int).tolist())
            names.append([NB101_OPERATORS[o] for o in ops[slots]])
        return matrices, names

    # ------------------------------------------------------------------ matrices
    def to_matrix(self, cells: NB101Batch) -> np.ndarray:
        """``(n, 1 + V(V-1)/2 + V-2)`` int16: the size, the upper triangle's bits, the inner operator ids (-1 pad)."""
        v = self.max_vertices
        rows, cols = np.triu_indices(v, 1)
        return np.concatenate([cells.num_blocks.astype(np.int16)[:, None],
                               cells.adjacency[:, rows, cols].astype(np.int16),
                               cells.ops[:, 1 : v - 1].astype(np.int16)], axis=1)

    def from_matrix(self, matrix: np.ndarray, where: str = "NAS-Bench-101 matrix") -> NB101Batch:
        """The batch of a :meth:`to_matrix` matrix; validated."""
        v = self.max_vertices
        rows, cols = np.triu_indices(v, 1)
        matrix = np.asarray(matrix)
        width = 1 + len(rows) + v - 2
        if matrix.ndim != 2 or matrix.shape[1] != width:
            raise ValueError(f"{where}: expected shape (n, {width}) for max_vertices={v}, got {matrix.shape}")
        adjacency = np.zeros((len(matrix), v, v), bool)
        adjacency[:, rows, cols] = matrix[:, 1 : 1 + len(rows)] != 0
        ops = np.full((len(matrix), v), PAD, np.int8)
        ops[:, 0], ops[:, v - 1] = INPUT, OUTPUT
        ops[:, 1 : v - 1] = matrix[:, 1 + len(rows) :]
        cells = NB101Batch(adjacency, ops)
        self.validate(cells, where=where)
        mismatch = matrix[:, 0] != cells.num_blocks
        if mismatch.any():
            i = int(np.flatnonzero(mismatch)[0])
            raise ValueError(f"{where}: row {i} says size {matrix[i, 0]} but its cell has "
                             f"{cells.num_blocks[i]} operator vertices")
        return cells

    # ------------------------------------------------------------------ moves
    def expand(self, cells: NB101Batch, dedupe: bool = True) -> NB101Batch:
        """Every child one operator vertex larger of every cell, parent by parent (module docstring).

        Within a parent, children come in a fixed order; with ``dedupe``
        duplicates (also across parents) are removed keeping first
        occurrences. Parents of the largest size are an error.
        """
        self.validate(cells, where="expand() parents")
        full = cells.num_blocks >= self.max_blocks
        if full.any():
            i = int(np.flatnonzero(full)[0])
            raise ValueError(f"cannot expand cell {self.format(cells[i])!r}: it has the largest size, "
                             f"{self.max_blocks} operator vertices")
        parts, parent_of = [], []
        sizes = cells.num_blocks
        for k in np.unique(sizes):
            members = np.flatnonzero(sizes == k)
            adj, ops, parent = self._children(cells.adjacency[members], cells.ops[members], int(k))
            parts.append(NB101Batch(adj, ops))
            parent_of.append(members[parent])
        if not parts:
            return self.empty_batch()
        parent_of = np.concatenate(parent_of)
        order = np.argsort(parent_of, kind="stable")
        children = NB101Batch.concat(parts).take(order)
        children = NB101Batch(*self._canonical(children.adjacency, children.ops))
        return self.unique(children) if dedupe else children

    def _children(self, adjacency: np.ndarray, ops: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Children (any slot order) of parents with ``k`` inner vertices, and each child's parent index."""
        v = self.max_vertices
        sources = np.arange(k + 1)  # input and the inner vertices
        targets = np.r_[np.arange(1, k + 1), v - 1]  # the inner vertices and the output
        masks = ((np.arange(1, 2 ** (k + 1))[:, None] >> np.arange(k + 1)) & 1).astype(bool)
        present = adjacency[:, sources][:, :, targets]  # (n, k+1, k+1)
        # (parent, S, T) such that the parent has every edge S x T
        missing = np.einsum("si,nij,tj->nst", masks.astype(np.int32), (~present).astype(np.int32),
                            masks.astype(np.int32))
        parent, s_index, t_index = np.nonzero(missing == 0)
        in_set, out_set = masks[s_index], masks[t_index]
        pairs = in_set[:, :, None] & out_set[:, None, :]  # the edges S x T, droppable
        m = pairs.sum(axis=(1, 2))
        edges = adjacency[parent].sum(axis=(1, 2)) + in_set.sum(axis=1) + out_set.sum(axis=1)
        new = k + 1  # the new vertex's slot
        out_adj, out_ops, out_parent = [], [], []
        for size in np.unique(m):
            chosen = np.flatnonzero(m == size)
            # every subset of the droppable edges, as bit patterns, but only those leaving <= max_edges
            patterns = ((np.arange(2**size)[:, None] >> np.arange(size)) & 1).astype(bool)
            dropped = patterns.sum(axis=1)
            keep = dropped[None, :] >= (edges[chosen] - self.max_edges)[:, None]
            c_index, p_index = np.nonzero(keep)
            if not c_index.size:
                continue
            triple = chosen[c_index]
            adj = adjacency[parent[triple]].copy()
            adj[:, sources, new] = in_set[triple]
            adj[:, new, targets] = out_set[triple]
            pair_rows, pair_cols = np.nonzero(pairs[triple].reshape(len(triple), -1))
            pair_cols = pair_cols.reshape(len(triple), size)
            src, dst = sources[pair_cols // (k + 1)], targets[pair_cols % (k + 1)]
            drop = patterns[p_index]
            row = np.repeat(np.arange(len(triple)), size).reshape(len(triple), size)
            adj[row[drop], src[drop], dst[drop]] = False
            for op in INNER_OPERATORS:
                child_ops = ops[parent[triple]].copy()
                child_ops[:, new] = op
                out_adj.append(adj)
                out_ops.append(child_ops)
                out_parent.append(parent[triple])
        if not out_adj:
            return np.zeros((0, v, v), bool), np.zeros((0, v), np.int8), np.zeros(0, np.intp)
        return np.concatenate(out_adj), np.concatenate(out_ops), np.concatenate(out_parent)

    def bypass_last(self, cells: NB101Batch) -> tuple[NB101Batch, np.ndarray]:
        """Each cell's parent (its last operator vertex bypassed) and the bypassed vertex's operator id.

        The last vertex in canonical order has the largest depth, so the output
        is its only successor; bypassing it links its predecessors to the
        output. The size-0 cell has no parent: it is an error.
        """
        self.validate(cells, where="bypass_last() cells")
        size = cells.num_blocks.astype(np.intp)
        if (size == 0).any():
            raise ValueError(f"cell {int(np.flatnonzero(size == 0)[0])} has no operator vertex to bypass")
        rows = np.arange(len(cells))
        adjacency, ops = cells.adjacency.copy(), cells.ops.copy()
        adjacency[:, :, -1] |= adjacency[rows, :, size]  # its predecessors now feed the output
        adjacency[rows, :, size] = False
        adjacency[rows, size, :] = False
        removed = ops[rows, size].copy()
        ops[rows, size] = PAD
        return NB101Batch(*self._canonical(adjacency, ops)), removed

    def cells_of_size(self, b: int) -> NB101Batch:
        """Every distinct cell of size ``b``, sorted by key (by repeated expansion of the size-0 cell; cached)."""
        self._check_size(b)
        if ("level", b) not in self._cache:
            level = self.empty_cells(1) if b == 0 else self.expand(self.cells_of_size(b - 1))
            self._cache[("level", b)] = level.take(np.argsort(self.keys(level), kind="stable"))
        return self._cache[("level", b)]

    def sample(self, n: int, blocks: int | None = None, seed: Any = 0, replace: bool = False) -> NB101Batch:
        """``n`` uniformly drawn distinct cells of size ``blocks`` (``None``: uniform over every size).

        Distinct (so ``n`` at most the number of such cells) unless ``replace``.
        """
        if n < 0:
            raise ValueError(f"sample size n must be >= 0, got {n}")
        sizes = range(self.max_blocks + 1) if blocks is None else [blocks]
        for b in sizes:
            self._check_size(b)
        pool = self.concat([self.cells_of_size(b) for b in sizes])
        if not replace and n > len(pool):
            raise ValueError(f"cannot draw {n} distinct cells: the space has only {len(pool)} of "
                             f"{'any size' if blocks is None else f'size {blocks}'}")
        return pool.take(np.random.default_rng(seed).choice(len(pool), size=n, replace=replace))

    def mutate(self, cells: NB101Batch, rng: np.random.Generator) -> NB101Batch:
        """Each cell changed in one place: one inner vertex's operator, or one edge added or removed.

        Moves are drawn uniformly among operator changes and edge flips (of
        the upper triangle, so no cycle can appear); a move that leaves a
        vertex off every input-output path, exceeds ``max_edges`` or gives an
        isomorphic copy of the cell is redrawn. The size-0 cell, which has no
        such move, gets a uniformly drawn size-1 cell instead.
        """
        self.validate(cells, where="mutate() parents")
        v = self.max_vertices
        adjacency, ops = cells.adjacency.copy(), cells.ops.copy()
        keys = self.keys(cells)
        pending = np.flatnonzero(cells.num_blocks > 0)
        rows, cols = np.triu_indices(v, 1)
        for _ in range(256):
            if not pending.size:
                break
            k = cells.num_blocks[pending].astype(np.int64)
            # move m < 2k: vertex m // 2 + 1 gets the (m % 2)-th other operator; else flip edge m - 2k
            moves = 2 * k + len(rows)
            move = (rng.random(len(pending)) * moves).astype(np.int64)
            adj, op = cells.adjacency[pending].copy(), cells.ops[pending].copy()
            change = move < 2 * k
            who = np.flatnonzero(change)
            vertex = move[who] // 2 + 1
            current = op[who, vertex].astype(np.int64)
            others = np.array([[o for o in INNER_OPERATORS if o != c] for c in INNER_OPERATORS])
            op[who, vertex] = others[current - INNER_OPERATORS[0], move[who] % 2]
            flip = np.flatnonzero(~change)
            edge = move[flip] - 2 * k[flip]
            adj[flip, rows[edge], cols[edge]] ^= True
            _, pruned_ops = _prune(adj, op)
            ok = ((pruned_ops == op).all(axis=1) & (adj.sum(axis=(1, 2)) <= self.max_edges)
                  & ~_edges_at_padding(adj, op))
            good = np.flatnonzero(ok)
            if good.size:
                new_adj, new_ops = self._canonical(adj[good], op[good])
                changed = self.keys(NB101Batch(new_adj, new_ops)) != keys[pending[good]]
                done = pending[good[changed]]
                adjacency[done], ops[done] = new_adj[changed], new_ops[changed]
                pending = np.setdiff1d(pending, done)
        if pending.size and (cells.num_blocks[pending] > 0).any():
            raise RuntimeError("mutate found no valid one-place change for some cells")
        empty = np.flatnonzero(cells.num_blocks == 0)
        if empty.size:
            children = self.cells_of_size(1)
            drawn = children.take(rng.integers(0, len(children), size=empty.size))
            adjacency[empty], ops[empty] = drawn.adjacency, drawn.ops
        return NB101Batch(adjacency, ops)


def _prune(adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove the vertices on no input-output path (and their edges); a cell with no path loses its output."""
    n, v = ops.shape
    used = ops != PAD
    adjacency = adjacency & used[:, :, None] & used[:, None, :]
    forward = np.zeros((n, v), bool)
    forward[:, 0] = used[:, 0]
    backward = np.zeros((n, v), bool)
    backward[:, -1] = used[:, -1]
    for _ in range(v - 1):
        forward |= (adjacency & forward[:, :, None]).any(axis=1)
        backward |= (adjacency & backward[:, None, :]).any(axis=2)
    keep = forward & backward  # a cell with no path keeps nothing: its output slot is then PAD
    ops = np.where(keep, ops, PAD).astype(np.int8)
    return adjacency & keep[:, :, None] & keep[:, None, :], ops


def _edges_at_padding(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Per cell: whether an edge touches an unused slot."""
    return ((adjacency.any(axis=2) | adjacency.any(axis=1)) & (ops == PAD)).any(axis=1)


def _parse_text(text: Any) -> tuple[np.ndarray, list[str]]:
    """The adjacency matrix and operator names of one text (unchecked beyond its syntax)."""
    if not isinstance(text, str):
        raise TypeError(f"a NAS-Bench-101 cell text must be a str, got {type(text).__name__}: {text!r}")
    head, semicolon, tail = text.strip().partition(";")
    if not semicolon:
        raise ValueError(f"malformed cell {text!r}: expected 'input|op|...|output;0>1,1>2,...'")
    names = [name.strip() for name in head.split("|")]
    matrix = np.zeros((len(names), len(names)), np.int64)
    for token in filter(None, (t.strip() for t in tail.split(","))):
        source, arrow, target = token.partition(">")
        if not arrow or not source.strip().isdigit() or not target.strip().isdigit():
            raise ValueError(f"malformed edge {token!r} in cell {text!r}: expected 'source>target'")
        s, t = int(source), int(target)
        if not (s < len(names) and t < len(names)):
            raise ValueError(f"edge {token!r} in cell {text!r} names a vertex beyond its {len(names)} vertices")
        matrix[s, t] = 1
    return matrix, names


def parse_adjacency(value: Any) -> Any:
    """An adjacency given as JSON text (``"[[0,1],[0,0]]"``), nested lists or arrays (parquet's too)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"the adjacency {value[:60]!r} is not JSON ({err.msg})") from None
    if isinstance(value, np.ndarray) and value.dtype == object:  # parquet's nested lists: arrays of rows
        return [np.asarray(row).tolist() for row in value]
    return value
