"""A user's own results table from any space the harness knows: loading and checking.

The table is a ``.csv`` or ``.parquet`` file (or a folder of parquet parts),
one row per training run:

``cell``
    the cell in its space's text form (PNAS/POPNAS ``(-1,sep3x3,-2,identity)``,
    NAS-Bench-201 ``|nor_conv_3x3~0|+|...``, NAS-Bench-101
    ``input|conv3x3-bn-relu|output;0>1,1>2``); for ``nb101`` tables
    ``adjacency`` and ``operators`` may replace it: the adjacency matrix as
    JSON (``[[0,1,1],[0,0,1],[0,0,0]]``, or a nested list in parquet), the
    vertices' operators as a list (JSON or parquet) or ``|``-separated
    (``input|conv3x3-bn-relu|output``), in the same vertex order;
``accuracy``
    a fraction in [0, 1];
``train_time``
    positive seconds (or any positive cost);
``seed`` or ``repeat`` (optional)
    which run of the cell the row is; without either, a cell's rows are its
    runs 0, 1, ... in file order;
``epochs`` (optional)
    the training length; a table without it is one fidelity (epochs 1);
anything else
    kept: numeric extra columns (energy, latency, ...) are averaged with the
    runs, so they can serve as further costs.

Checks are :mod:`backends.table`'s (the same messages: file, row counted
from 1, column, value); cells are canonicalised (NAS-Bench-101 cells pruned
and put in canonical vertex order, so isomorphic drawings are one cell).
Repeats are averaged (``runs="mean"``: one row per cell and epochs, with
``runs`` the number averaged) or kept (``runs="keep"``), by
:func:`backends.table.group_runs` and :func:`backends.table.served_rows`,
the table backend's own run handling.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd

from backends.table import _checked, group_runs, raise_for_bad_rows, read_table_file, served_rows
from harness.nb101_space import NB101Space, parse_adjacency
from harness.nb201_space import NB201Space
from harness.space import CellSpace

#: Spaces a user's table may come from.
USER_TABLE_SPACES: tuple[str, ...] = ("nb101", "pnas", "popnas", "nb201")

#: How repeated runs of a cell are served.
USER_TABLE_RUNS: tuple[str, ...] = ("mean", "keep")


def user_table_space(name: str, max_blocks: int | None = None, max_vertices: int | None = None):
    """The space ``name`` (:data:`USER_TABLE_SPACES`): PNAS/POPNAS with ``max_blocks`` (default 5),
    NAS-Bench-101 with ``max_vertices`` (default 7), NAS-Bench-201."""
    if name not in USER_TABLE_SPACES:
        raise ValueError(f"unknown table space {name!r}; choose one of {USER_TABLE_SPACES}")
    if name == "nb101":
        return NB101Space(max_vertices=7 if max_vertices is None else int(max_vertices))
    if name == "nb201":
        return NB201Space()
    factory = CellSpace.pnas if name == "pnas" else CellSpace.popnas
    return factory(max_blocks=5 if max_blocks is None else int(max_blocks))


def _operator_list(value: Any) -> Any:
    """Operators given as a list, a JSON list or a ``|``-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"the operators {text[:60]!r} are not a JSON list ({err.msg})") from None
        return [name.strip() for name in text.split("|")]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(name) if isinstance(name, (str, np.str_)) else name for name in value]
    raise ValueError(f"the operators {value!r} are neither a list nor a '|'-separated string")


def _nb101_cells(frame: pd.DataFrame, source: str, space: NB101Space) -> np.ndarray:
    """The canonical text of each row's ``adjacency`` and ``operators`` (one conversion per distinct pair)."""
    missing = [c for c in ("adjacency", "operators") if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: an nb101 table needs a 'cell' column or both 'adjacency' and "
                         f"'operators'; missing {missing}")
    for column in ("adjacency", "operators"):
        raise_for_bad_rows(source, frame, column, frame[column].isna().to_numpy(), "is missing")
    # a text key per row, so repeated runs of one drawing are converted once
    keys = frame["adjacency"].map(_text_key) + "\x00" + frame["operators"].map(_text_key)
    codes, distinct = pd.factorize(keys)
    _, first = np.unique(codes, return_index=True)
    matrices, names = [], []
    for row in first:
        for column, convert, out in (("adjacency", parse_adjacency, matrices), ("operators", _operator_list, names)):
            try:
                out.append(convert(frame[column].iloc[row]))
            except ValueError as err:
                raise ValueError(f"{source} row {row + 1}, column {column!r}: {err}") from None
    cells = space.from_graphs(matrices, names, where=lambda i: f"{source} row {first[i] + 1}",
                              columns=("adjacency", "operators"))
    return space.format_array(cells)[codes]


def _text_key(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(np.asarray(value, dtype=object).tolist(), default=str)


def load_user_table(path: str | os.PathLike, space: str = "nb101", runs: str = "mean",
                    max_blocks: int | None = None, max_vertices: int | None = None) -> pd.DataFrame:
    """The checked rows of a user's table (see the module docstring) in the space ``space``.

    Columns: ``cell`` (canonical text), ``blocks`` (the space's size:
    blocks, operators or operator vertices), ``accuracy``, ``train_time``,
    ``epochs``, the extra columns, ``runs`` and ``run_seed`` (the served
    run's seed; NA for means), sorted by cell key and epochs. Errors name
    the file, the row and the column.
    """
    if runs not in USER_TABLE_RUNS:
        raise ValueError(f"runs must be one of {USER_TABLE_RUNS}, got {runs!r}")
    cell_space = user_table_space(space, max_blocks, max_vertices)
    source = str(path)
    frame = read_table_file(path).reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"{source}: the results table has no rows")
    for column in ("accuracy", "train_time"):
        if column not in frame.columns:
            raise ValueError(f"{source}: missing column {column!r}; a user's table needs 'accuracy', "
                             f"'train_time' and the cell ('cell', or for nb101 'adjacency' and 'operators')")
    if "cell" not in frame.columns:
        if space != "nb101":
            raise ValueError(f"{source}: missing column 'cell' (the {space} text form of each row's cell)")
        frame = frame.assign(cell=_nb101_cells(frame, source, cell_space))
        frame = frame.drop(columns=["adjacency", "operators"])
    if "seed" not in frame.columns:
        if "repeat" in frame.columns:
            frame = frame.rename(columns={"repeat": "seed"})
        else:
            frame = frame.assign(seed=frame.groupby("cell", sort=False).cumcount())
    if "epochs" not in frame.columns:
        frame = frame.assign(epochs=1)
    table, _, cell_ids = _checked(frame, source, cell_space, derive_blocks=True)
    grouped, group_cells, starts, sizes = group_runs(table, cell_ids)
    served = served_rows(grouped, sizes, mean=runs == "mean")
    at = starts if runs == "mean" else np.arange(len(grouped))
    identity = grouped.iloc[at][["cell", "blocks", "epochs"]].reset_index(drop=True)
    return pd.concat([identity, served.reset_index(drop=True)], axis=1)


__all__ = ["USER_TABLE_RUNS", "USER_TABLE_SPACES", "load_user_table", "user_table_space"]
