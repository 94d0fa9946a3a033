"""Results tables served through the evaluator protocol (NORD's table-lookup evaluator).

A *results table* has one row per training run, with at least the protocol
columns ``cell, blocks, accuracy, train_time, epochs, seed`` (any further
columns are carried through to the served rows). It is a ``.parquet`` or
``.csv`` file, chosen by suffix, or a folder of parquet parts (a
:class:`harness.store.ResultsStore`, which is what ``backends.record``
writes). Cells are the space's text form; they are re-canonicalised on load.

Space
    ``space``, ``max_blocks`` and ``lookback`` default to the ones the
    table's recorded provenance names (the ``backend_options`` column that
    ``backends.record`` writes), else to PNAS's space with ``B = 5``. A space
    given explicitly must be the recorded one (a POPNAS-space table is not
    served as the PNAS space, nor the other way round; same lookback).
    Batches of a space with fewer blocks (same lookback and operators) are
    served too: a table of ``B = 5`` answers the cells of a ``B = 3`` search.

Loading checks every row; an error names the file, the row (data rows
counted from 1, a CSV's header line not counted) and the column, e.g.
``results.csv row 17, column 'train_time': -3.0 is not a positive finite time``.

Runs
    A cell may have several runs (NAS-Bench-101 has three seeds per cell).
    ``evaluate(cells, epochs, seed)`` considers the runs of each cell at
    ``epochs`` (``None``: the table's largest epochs) and serves, by the
    ``run`` policy: ``"seed"``, the run with that seed (the first such row if
    the file repeats one); ``"sample"``, one of the cell's runs drawn by a
    hash of ``(seed, cell)``, so the same query always gets the same run;
    ``"mean"``, the average of all its runs (numeric extra columns averaged,
    others from the first run). Served frames add ``runs`` (how many runs
    the values come from) and ``run_seed`` (the table seed of the served run;
    missing for ``"mean"`` and surrogate fill-ins).

Missing cells
    A cell with no run at the asked epochs (and, for ``run="seed"``, seed)
    raises :class:`CellNotInTable`, unless a ``fallback`` fills it in:
    ``"nearest"`` serves the run of the nearest cell that has one, by
    Hamming distance: the number of differing entries of the two cells'
    padded ``(in1, op1, in2, op2)`` block arrays (a changed input or
    operator counts 1, a block one cell has and the other lacks counts 4;
    ties go to the cell with the smallest space key);
    ``"surrogate"`` scores it with a :class:`~backends.surrogate.SurrogateBackend`
    built from ``fallback_options`` (its ``max_epochs`` defaults to the
    table's). Fill-ins have ``filled_in`` True and, for ``"nearest"``, the
    served cell in ``filled_from``.

Virtual clock
    :attr:`TableBackend.simulated_time` sums the ``train_time`` of every row
    served (fill-ins included): what the evaluations would have cost to
    train. Each frame's ``virtual_clock`` column is that sum after each row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from backends.base import PROVENANCE_COLUMNS, RESULT_COLUMNS, Backend, resolve_space
from backends.surrogate import SurrogateBackend
from harness.noise import hash_rows
from harness.space import EMPTY, Cell, CellBatch, CellSpace
from harness.store import ResultsStore, read_parquet_file

#: The measured table shipped in the package, served by ``backends.make("table")``.
EMBEDDED_TABLE = Path(__file__).resolve().parent / "data" / "measured_digits_cpu.parquet"

#: Columns every results table must have.
TABLE_COLUMNS: tuple[str, ...] = ("cell", "blocks", "accuracy", "train_time", "epochs", "seed")

#: How ``evaluate`` chooses among a cell's runs.
RUN_POLICIES: tuple[str, ...] = ("seed", "sample", "mean")

#: How cells missing from the table are filled in (``None``: they are an error).
FALLBACKS: tuple[str, ...] = ("nearest", "surrogate")

#: Columns the table backend adds to its frames.
TABLE_BACKEND_COLUMNS: tuple[str, ...] = ("runs", "run_seed", "filled_in", "filled_from", "virtual_clock")

# a table's own columns with these names (a recorded frame's provenance, say) are served as source_<name>
_RESERVED_COLUMNS = frozenset(RESULT_COLUMNS + PROVENANCE_COLUMNS + TABLE_BACKEND_COLUMNS)

# keeps the distance block of the nearest-cell search near 16 MB
_NEAREST_CHUNK_ELEMENTS = 2**24

_SALT_SAMPLE_RUN = 0x5A3D


class CellNotInTable(LookupError):
    """A cell has no run (at the asked epochs and seed) in a results table."""


def read_table_file(path: str | os.PathLike) -> pd.DataFrame:
    """The raw rows of a ``.parquet``/``.csv`` file or a folder of parquet parts (unchecked)."""
    path = Path(path)
    if path.is_dir():
        return ResultsStore(path).read()
    if not path.exists():
        raise FileNotFoundError(f"results table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet_file(path)
    if suffix == ".csv":
        try:
            return pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            with open(path, encoding="utf-8", errors="replace") as handle:
                header = handle.readline()
            raise ValueError(f"{path} is not a readable CSV file: {str(err).strip()}"
                             f"{_separator_hint(header)}") from None
    raise ValueError(f"cannot read results table {path}: use a .parquet or .csv file or a folder of parts")


def _separator_hint(header: str) -> str:
    """A hint for a CSV whose header line looks separated by ';' or tabs ('' when it does not)."""
    for separator, label in ((";", "';'"), ("\t", "tabs")):
        if separator in header:
            return (f"; its header {header.strip()[:80]!r} looks separated by {label}: a results CSV "
                    "is comma-separated (pandas: to_csv(path, index=False))")
    return ""


def raise_for_bad_rows(source: str, frame: pd.DataFrame, column: str, bad: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` naming ``source``, the first row where ``bad`` holds, ``column`` and its value."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = frame[column].iloc[[i]].tolist()[0]
        raise ValueError(f"{source} row {i + 1}, column {column!r}: {value!r} {what}")


def load_results_table(path: str | os.PathLike, space: CellSpace) -> pd.DataFrame:
    """The rows of the table at ``path``, checked, with canonical cells and typed columns."""
    return _checked(read_table_file(path), str(path), space)[0]


def recorded_space(frame: pd.DataFrame, source: str = "results table") -> dict[str, Any] | None:
    """``{"space", "max_blocks", "lookback"}`` that the rows' provenance names, or ``None`` if none does.

    Read from the ``backend_options`` JSON that ``backends.record`` writes;
    ``max_blocks`` is the largest recorded. Rows of different spaces (or
    lookbacks) raise ``ValueError`` naming ``source``.
    """
    if "backend_options" not in frame.columns:
        return None
    spaces = set()
    for text in frame["backend_options"].dropna().unique():
        try:
            options = json.loads(text)
        except (TypeError, ValueError):
            continue  # not provenance written by a backend
        if isinstance(options, dict) and {"space", "max_blocks", "lookback"} <= set(options):
            spaces.add((options["space"], options["lookback"], options["max_blocks"]))
    if not spaces:
        return None
    if len({(name, lookback) for name, lookback, _ in spaces}) > 1:
        raise ValueError(f"{source}: rows were recorded in different spaces {sorted(spaces)} "
                         "(space, lookback, max_blocks); serve one space's rows at a time")
    (name, lookback, _), *_ = spaces
    return {"space": name, "max_blocks": max(b for _, _, b in spaces), "lookback": lookback}


def _checked(frame: pd.DataFrame, source: str, space: Any, derive_blocks: bool = False
             ) -> tuple[pd.DataFrame, Any, np.ndarray]:
    """Checked table, its distinct cells sorted by space key, and each row's index into them.

    ``space`` is any space of the search-space protocol with ``parse`` and
    ``batch``; with ``derive_blocks`` a missing ``blocks`` column is filled
    in from the cells instead of being required (a user's own table).
    """
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"{source}: the results table has no rows")
    derived = derive_blocks and "blocks" not in frame.columns
    if derived:
        frame = frame.assign(blocks=0)
    missing = [c for c in TABLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; a results table needs {list(TABLE_COLUMNS)}"
            f"{_separator_hint(' '.join(str(c) for c in frame.columns))}"
        )

    def numbers(column: str) -> np.ndarray:
        return pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64, na_value=np.nan)

    accuracy, train_time = numbers("accuracy"), numbers("train_time")
    epochs, seed, blocks = numbers("epochs"), numbers("seed"), numbers("blocks")
    with np.errstate(invalid="ignore"):
        checks = (
            ("accuracy", ~(np.isfinite(accuracy) & (accuracy >= 0) & (accuracy <= 1)),
             "is not a finite accuracy in [0, 1]"),
            ("train_time", ~(np.isfinite(train_time) & (train_time > 0)),
             "is not a positive finite time"),
            ("epochs", ~(np.isfinite(epochs) & (epochs >= 1) & (epochs == np.round(epochs))),
             "is not a positive integer number of epochs"),
            ("seed", ~(np.isfinite(seed) & (seed >= 0) & (seed == np.round(seed))),
             "is not a non-negative integer seed"),
            ("blocks", ~(np.isfinite(blocks) & (blocks == np.round(blocks))),
             "is not an integer block count"),
        )
    for column, bad, what in checks:
        raise_for_bad_rows(source, frame, column, bad, what)

    codes, texts = pd.factorize(frame["cell"], use_na_sentinel=True)
    raise_for_bad_rows(source, frame, "cell", codes < 0, "is not a cell text")
    _, first_row = np.unique(codes, return_index=True)  # factorize numbers texts as they first appear
    parsed = []
    for text, row in zip(texts, first_row):  # one parse per distinct text, not per row
        try:
            parsed.append(space.parse(text))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{source} row {row + 1}, column 'cell': {err}") from None
    distinct = space.batch(parsed)
    if derived:
        blocks = distinct.num_blocks[codes].astype(np.float64)
    raise_for_bad_rows(
        source, frame, "blocks", blocks != distinct.num_blocks[codes],
        "does not match the number of blocks of the row's cell",
    )
    _, first, key_index = np.unique(space.keys(distinct), return_index=True, return_inverse=True)
    cells = distinct.take(first)
    frame = frame.assign(
        cell=space.format_array(distinct)[codes],
        blocks=blocks.astype(np.int64),
        accuracy=accuracy,
        train_time=train_time,
        epochs=epochs.astype(np.int64),
        seed=seed.astype(np.int64),
    )
    return frame, cells, key_index[codes]


def group_runs(table: pd.DataFrame, cell_ids: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """The runs of a checked table sorted by (cell, epochs, seed), stably (repeated rows keep file
    order), so the runs of each (cell, epochs) group are contiguous: ``(runs, their cell ids, the
    first row of each group, the group sizes)``."""
    order = np.lexsort((table["seed"].to_numpy(), table["epochs"].to_numpy(), cell_ids))
    runs = table.iloc[order].reset_index(drop=True)
    run_cells, run_epochs = cell_ids[order], runs["epochs"].to_numpy()
    new_group = np.ones(len(runs), bool)
    new_group[1:] = (run_cells[1:] != run_cells[:-1]) | (run_epochs[1:] != run_epochs[:-1])
    starts = np.flatnonzero(new_group)
    return runs, run_cells, starts, np.diff(np.append(starts, len(runs)))


def served_rows(runs: pd.DataFrame, group_sizes: np.ndarray, mean: bool) -> pd.DataFrame:
    """The rows a table serves from :func:`group_runs`' runs: each run, or with ``mean`` one row per
    (cell, epochs) group.

    Columns: ``accuracy, train_time``, the extra columns (renamed
    ``source_<name>`` where they clash with the served ones), ``runs``
    and ``run_seed``. Means average the numeric columns and take the
    others from the group's first run.
    """
    extras = [c for c in runs.columns if c not in TABLE_COLUMNS]
    renamed = {c: f"source_{c}" for c in extras if c in _RESERVED_COLUMNS}
    values = runs[["accuracy", "train_time", *extras]].rename(columns=renamed)
    if not mean:
        return values.assign(runs=1, run_seed=pd.array(runs["seed"], dtype="Int64"))
    group_id = np.repeat(np.arange(len(group_sizes)), group_sizes)
    how = {c: "mean" if pd.api.types.is_numeric_dtype(values[c]) else "first" for c in values}
    served = values.groupby(group_id, sort=True).agg(how).reset_index(drop=True)
    return served.assign(runs=group_sizes, run_seed=pd.array([pd.NA] * len(served), dtype="Int64"))


def _table_space(frame: pd.DataFrame, source: str, space: CellSpace | str | None,
                 max_blocks: int | None, lookback: int | None) -> CellSpace:
    """The space to serve ``frame`` in: what is given, the rest from its provenance, else PNAS's B=5."""
    recorded = recorded_space(frame, source) or {}
    if isinstance(space, CellSpace):
        chosen = space
    else:
        chosen = resolve_space(space or recorded.get("space", "pnas"),
                               max_blocks if max_blocks is not None else recorded.get("max_blocks", 5),
                               lookback if lookback is not None else recorded.get("lookback", 2))
    if recorded and (chosen.name, chosen.lookback) != (recorded["space"], recorded["lookback"]):
        raise ValueError(
            f"{source} was recorded in the {recorded['space']!r} space (lookback {recorded['lookback']}), "
            f"so it cannot be served as the {chosen.name!r} space (lookback {chosen.lookback}); "
            "leave space and lookback out to serve it in its own space")
    return chosen


class TableBackend(Backend):
    """Serves a results table through the evaluator protocol; see the module docstring.

    Parameters
    ----------
    path:
        the table (``.parquet``, ``.csv`` or a folder of parquet parts);
        ``None`` serves the package's :data:`EMBEDDED_TABLE`.
    space, max_blocks, lookback:
        the cell space the table's cells belong to; by default the one its
        provenance records (see the module docstring).
    run:
        ``"seed"``, ``"sample"`` or ``"mean"``: how one of a cell's runs is chosen.
    fallback:
        ``None`` (missing cells raise :class:`CellNotInTable`), ``"nearest"`` or ``"surrogate"``.
    fallback_options:
        keyword arguments of the surrogate fallback's ``SurrogateBackend``.
    """

    name: ClassVar[str] = "table"

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        space: CellSpace | str | None = None,
        max_blocks: int | None = None,
        lookback: int | None = None,
        run: str = "seed",
        fallback: str | None = None,
        fallback_options: dict[str, Any] | None = None,
    ) -> None:
        if run not in RUN_POLICIES:
            raise ValueError(f"unknown run policy {run!r}; choose one of {list(RUN_POLICIES)}")
        if fallback is not None and fallback not in FALLBACKS:
            raise ValueError(f"unknown fallback {fallback!r}; choose None or one of {list(FALLBACKS)}")
        if fallback_options and fallback != "surrogate":
            raise ValueError(
                f"fallback_options {fallback_options!r} are only used with fallback='surrogate', "
                f"not fallback={fallback!r}"
            )
        if path is None:
            if not EMBEDDED_TABLE.exists():
                raise FileNotFoundError(
                    f"the embedded measured table {EMBEDDED_TABLE} has not been recorded yet; "
                    "pass path= to serve another results table"
                )
            path = EMBEDDED_TABLE
        self.path = Path(path)
        raw = read_table_file(self.path)
        self.space = _table_space(raw, str(self.path), space, max_blocks, lookback)
        self.run = run
        self.fallback = fallback
        self.fallback_options = dict(fallback_options or {})
        self.simulated_time = 0.0

        table, self._cells, cell_ids = _checked(raw, str(self.path), self.space)
        self.num_rows = len(table)
        self.max_epochs = int(table["epochs"].max())
        self._cell_keys = self.space.keys(self._cells)
        self._cell_texts = self.space.format_array(self._cells)
        runs, run_cells, starts, self._group_sizes = group_runs(table, cell_ids)
        run_epochs = runs["epochs"].to_numpy()
        self._served = served_rows(runs, self._group_sizes, mean=run == "mean")
        served_at = starts if run == "mean" else np.arange(len(runs))
        self._served_cells, self._served_epochs = run_cells[served_at], run_epochs[served_at]
        self._served_seeds = self._served["run_seed"].to_numpy(np.float64, na_value=np.nan)
        # lookup key -> served row: (cell, epochs, seed) for "seed", (cell, epochs) otherwise,
        # where "sample" lands on the group's first run and adds its draw
        if run == "seed":
            index = pd.MultiIndex.from_arrays([run_cells, run_epochs, runs["seed"].to_numpy()])
            keep = np.flatnonzero(~index.duplicated())
        else:
            index, keep = pd.MultiIndex.from_arrays([run_cells, run_epochs]), starts
        self._lookup = index[keep]
        self._lookup_rows = np.arange(len(starts)) if run == "mean" else keep
        self._surrogate = None
        if fallback == "surrogate":
            self._surrogate = SurrogateBackend(
                space=self.space, **{"max_epochs": self.max_epochs, **self.fallback_options}
            )

    def as_batch(self, cells: CellBatch | Sequence[Cell | str]) -> CellBatch:
        """``cells`` as a batch of the table's space; a batch of a space with fewer blocks is padded."""
        if isinstance(cells, CellBatch) and cells.blocks.ndim == 3 and cells.max_blocks < self.space.max_blocks:
            blocks = np.full((len(cells), self.space.max_blocks, 4), EMPTY, np.int8)
            blocks[:, : cells.max_blocks] = cells.blocks
            cells = CellBatch(blocks, cells.num_blocks)
        return super().as_batch(cells)

    def options(self) -> dict[str, Any]:
        """Settings recorded with every row."""
        return {
            "path": str(self.path), "rows": self.num_rows, "space": self.space.name,
            "max_blocks": self.space.max_blocks, "lookback": self.space.lookback,
            "run": self.run, "fallback": self.fallback, "fallback_options": self.fallback_options,
        }

    def reset_clock(self) -> None:
        """Set :attr:`simulated_time` back to zero."""
        self.simulated_time = 0.0

    # ------------------------------------------------------------------ lookups
    def _cell_ids(self, cells: CellBatch) -> np.ndarray:
        """Index of each cell among the table's distinct cells, -1 when absent (a sorted-key join)."""
        query = self.space.keys(cells)
        position = np.minimum(np.searchsorted(self._cell_keys, query), len(self._cell_keys) - 1)
        return np.where(self._cell_keys[position] == query, position, -1)

    def _locate(self, cell_ids: np.ndarray, epochs: int, seed: int) -> np.ndarray:
        """Row of :attr:`_served` for each cell at ``epochs`` (and ``seed``) under the run policy; -1 if none."""
        n = len(cell_ids)
        key = [cell_ids, np.full(n, epochs)] + ([np.full(n, seed)] if self.run == "seed" else [])
        found = self._lookup.get_indexer(pd.MultiIndex.from_arrays(key))
        rows = np.where(found >= 0, self._lookup_rows[found], -1)
        if self.run == "sample":
            hit = found >= 0
            codes = self.space.block_codes(self._cells.take(cell_ids[hit]))
            draw = hash_rows(codes, _SALT_SAMPLE_RUN, seed) % self._group_sizes[found[hit]].astype(np.uint64)
            rows[hit] += draw.astype(np.int64)
        return rows

    def _candidates(self, epochs: int, seed: int) -> np.ndarray:
        """Distinct cells (indices, sorted by key) that have a served row at ``epochs`` (and ``seed``)."""
        usable = self._served_epochs == epochs
        if self.run == "seed":
            usable &= self._served_seeds == seed
        return np.unique(self._served_cells[usable])

    def _nearest(self, cells: CellBatch, epochs: int, seed: int) -> np.ndarray:
        """For each cell, the table cell (index) at the smallest Hamming distance; ties: smallest key."""
        candidates = self._candidates(epochs, seed)
        if candidates.size == 0:
            raise CellNotInTable(
                f"no cell of table {self.path} has a run at {self._run_description(epochs, seed)}, "
                "so the 'nearest' fallback has nothing to fill in from"
            )
        # slot by slot: a (chunk, candidates) uint8 distance, no (chunk, candidates, slots) temporary
        table_slots = np.ascontiguousarray(self._cells.blocks[candidates].reshape(len(candidates), -1).T)
        query_slots = cells.blocks.reshape(len(cells), -1)
        chunk = max(1, _NEAREST_CHUNK_ELEMENTS // len(candidates))
        nearest = np.empty(len(cells), np.int64)
        for start in range(0, len(cells), chunk):
            part = query_slots[start : start + chunk]
            distance = np.zeros((len(part), len(candidates)), np.uint8)
            for slot, table_values in enumerate(table_slots):
                distance += part[:, slot, None] != table_values[None, :]
            nearest[start : start + chunk] = candidates[distance.argmin(axis=1)]  # first minimum
        return nearest

    def _run_description(self, epochs: int, seed: int) -> str:
        return f"epochs={epochs}, seed={seed}" if self.run == "seed" else f"epochs={epochs}"

    def _not_in_table(self, cells: CellBatch, cell_ids: np.ndarray, missing: np.ndarray,
                      epochs: int, seed: int) -> CellNotInTable:
        i = int(np.flatnonzero(missing)[0])
        text = self.space.format(cells[i])
        if cell_ids[i] < 0:
            message = f"cell {text!r} is not in table {self.path}"
        else:
            has = self._served_cells == cell_ids[i]
            runs = sorted(set(zip(self._served_epochs[has].tolist(), self._served_seeds[has].tolist())))
            shown = ", ".join(
                f"epochs={e}" + ("" if np.isnan(s) else f" seed={int(s)}") for e, s in runs[:10]
            )
            message = (
                f"cell {text!r} has no run at {self._run_description(epochs, seed)} in table "
                f"{self.path}; its runs: {shown}{' ...' if len(runs) > 10 else ''}"
            )
        others = int(missing.sum()) - 1
        if others:
            message += f" ({others} more cell(s) of this batch are missing too)"
        return CellNotInTable(message + "; fallback='nearest' or 'surrogate' fills missing cells in")

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, cells: CellBatch, epochs: int, seed: int) -> dict[str, np.ndarray]:
        cell_ids = self._cell_ids(cells)
        rows = self._locate(cell_ids, epochs, seed)
        missing = rows < 0
        filled_from = np.full(len(cells), None, dtype=object)
        if missing.any():
            if self.fallback is None:
                raise self._not_in_table(cells, cell_ids, missing, epochs, seed)
            if self.fallback == "nearest":
                neighbours = self._nearest(cells.take(missing), epochs, seed)
                rows[missing] = self._locate(neighbours, epochs, seed)
                filled_from[missing] = self._cell_texts[neighbours]
        served = self._served.iloc[np.maximum(rows, 0)].reset_index(drop=True)
        if self.fallback == "surrogate" and missing.any():
            self._surrogate.check_epochs(epochs)
            scored = self._surrogate.score(cells.take(missing), epochs, seed)
            runs = np.where(missing, 0, served["runs"].to_numpy())
            served = served.where(np.broadcast_to(~missing[:, None], served.shape))  # no table values
            served.loc[missing, "accuracy"] = scored["accuracy"]
            served.loc[missing, "train_time"] = scored["train_time"]
            served["runs"] = runs
        clock = self.simulated_time + np.cumsum(served["train_time"].to_numpy(np.float64))
        if len(clock):
            self.simulated_time = float(clock[-1])
        measured = {column: served[column].to_numpy() for column in served.columns}
        measured.update(filled_in=missing, filled_from=filled_from, virtual_clock=clock)
        return measured

