"""Study ``surrogate_calibration``: does the surrogate hit the Kendall tau it is set to?

For each target tau, fresh random cells (not the surrogate's own reference
sample) are evaluated at full fidelity, and tau-b between noisy and clean
accuracy (and training time) is measured.
"""

from __future__ import annotations

import pandas as pd

import backends
from harness.noise import kendall_tau
from harness.space import CellBatch


def surrogate_calibration(
    taus: tuple[float, ...] = (0.65, 0.75, 0.85, 0.95),
    cells_per_block_count: int = 2000,
    seed: int = 1,
    **surrogate_options,
) -> pd.DataFrame:
    """One row per target tau: ``target_tau``, ``measured_tau``, ``time_tau`` targets and measures."""
    rows = []
    for tau in taus:
        backend = backends.make("surrogate", tau=tau, **surrogate_options)
        space = backend.space
        cells = CellBatch.concat([
            space.sample(min(cells_per_block_count, space.num_unique_cells(b)), b, seed=[seed, b])
            for b in range(1, space.max_blocks + 1)
        ])
        frame = backend.evaluate(cells, seed=seed)
        rows.append({
            "target_tau": tau,
            "measured_tau": kendall_tau(frame["accuracy"], frame["accuracy_clean"]),
            "target_time_tau": backend.time_tau,
            "measured_time_tau": kendall_tau(frame["train_time"], frame["train_time_clean"]),
            "cells": len(cells),
        })
    return pd.DataFrame(rows)
