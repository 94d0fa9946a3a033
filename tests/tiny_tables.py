"""Small results tables the tests write themselves (never downloaded): cells of the first sizes of a
space, a training time that grows with the network's FLOPs, an accuracy that grows with its parameter
count, both with seeded noise, and two runs of some cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import CellSpace
from harness.cost_features import cell_costs
from harness.nb101_space import NB101Space
from harness.nb201_space import NB201Space


def _cells(space_name: str):
    if space_name == "nb101":
        space = NB101Space()
        return space, space.concat([space.cells_of_size(0), space.cells_of_size(1), space.sample(40, 2, seed=0),
                                    space.sample(30, 3, seed=1)])
    if space_name == "nb201":
        space = NB201Space()
        return space, space.concat([space.empty_cells(1), space.initial_cells(), space.sample(40, 2, seed=0),
                                    space.sample(30, 3, seed=1)])
    space = CellSpace.pnas(max_blocks=3)
    return space, space.concat([space.empty_cells(1), space.initial_cells()[:30], space.sample(30, 2, seed=0),
                                space.sample(20, 3, seed=1)])


def tiny_table(space_name: str, seed: int = 0) -> pd.DataFrame:
    """The rows of a tiny table of ``space_name`` (``nb101`` as adjacency + operators, else cell texts)."""
    space, cells = _cells(space_name)
    params, macs = cell_costs(space_name, space.to_matrix(cells))
    rng = np.random.default_rng(seed)
    repeated = np.r_[np.arange(len(cells)), np.arange(0, len(cells), 4)]  # every 4th cell twice
    run = np.r_[np.zeros(len(cells), int), np.ones(len(repeated) - len(cells), int)]
    time = (0.5 + macs[repeated] / np.median(macs)) * rng.lognormal(0.0, 0.05, len(repeated))
    accuracy = np.clip(0.5 + 0.04 * np.log1p(params[repeated] / 1e3) + rng.normal(0, 0.01, len(repeated)), 0, 1)
    rows = pd.DataFrame({"accuracy": accuracy, "train_time": time, "repeat": run,
                         "energy": 3.0 * time})
    if space_name == "nb101":
        matrices, names = space.graphs(cells)
        rows.insert(0, "operators", ["|".join(names[i]) for i in repeated])
        rows.insert(0, "adjacency", [json.dumps(matrices[i]) for i in repeated])
    else:
        rows.insert(0, "cell", space.format_array(cells)[repeated])
    return rows


def write_tiny_table(path: str | Path, space_name: str) -> Path:
    """Write :func:`tiny_table` to ``path`` (CSV or parquet by suffix)."""
    path = Path(path)
    frame = tiny_table(space_name)
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path
