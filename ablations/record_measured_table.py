"""Record the embedded measured table: a PNAS and a POPNAS run with real training, one table.

The table that ``backends.make("table")`` serves by default, and that the
main job uses wherever a study needs real training times. Regenerate it with
(on a GPU too: add ``--device cuda --out backends/data/measured_digits_cuda.parquet``)::

    python -m ablations.record_measured_table --clock cpu

Both searches run in the PNAS space through the training backend on
scikit-learn's digits, each resumable in its own folder under ``--work``
(a killed recording continues where it stopped). Training times follow
``--clock`` (default ``auto``: the training thread's CPU time on CPU with
one thread, wall time on CUDA; see ``backends.training``; the committed
table used ``cpu``), and every row also
keeps ``wall_time`` and ``cpu_time``. A drift monitor
(``harness.search.drift``) re-times ``--drift-cells`` of the 8 symmetric
one-block cells ``--drift-repeats`` times at the start of every step, so
the provenance can say how much the machine's speed drifted between steps
and how noisy repeated timings are. Their ``trained`` tables are joined
with a ``strategy`` column and written atomically to ``--out``, with a JSON
sidecar holding the provenance: hardware, library versions, settings, the
clock, the commits the rows were measured at, each search's drift summary,
wall time and the command.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

import backends
from backends.table import EMBEDDED_TABLE
from harness import CellSpace
from harness.provenance import environment
from harness.search import PNAS, POPNAS
from harness.search.checkpoint import SearchRun
from harness.search.drift import DriftMonitor, drift_report, symmetric_one_block_cells
from harness.store import atomic_write_frame, atomic_write_text

log = logging.getLogger(__name__)

#: The settings of the committed table (also the command-line defaults).
DEFAULTS = {
    "max_blocks": 5, "K": 64, "epochs": 5, "filters": 8, "cells_per_stage": 1,
    "batch_size": 128, "lr": 0.01, "seed": 0, "threads": 1, "device": "cpu", "clock": "auto",
    "drift_cells": 8, "drift_repeats": 2,
}


def record_measured_table(out: Path, work: Path, max_blocks: int, K: int, epochs: int, filters: int,
                          cells_per_stage: int, batch_size: int, lr: float, seed: int,
                          threads: int, device: str, clock: str, drift_cells: int, drift_repeats: int,
                          strategies: str = "pnas,popnas", note: str = "", partial: bool = False
                          ) -> pd.DataFrame:
    """Run PNAS then POPNAS with real training and write their joined ``trained`` tables to ``out``.

    ``strategies`` picks which searches this invocation runs (comma-separated);
    the others are read from their folders under ``work`` when complete. Two
    invocations, one per search, can so record in parallel on two cores.
    ``drift_cells`` (0 = no monitor) and ``drift_repeats`` configure the
    drift monitor. ``note`` is stored in the provenance (how and where it
    was recorded, and why any setting was reduced). With ``partial`` the
    table is written from the steps completed so far (``completed_steps``
    in the provenance says how many) instead of waiting for every step.
    """
    import torch

    torch.set_num_threads(threads)
    space = CellSpace.pnas(max_blocks=max_blocks)
    backend = backends.make("training", space=space, dataset="digits", filters=filters,
                            cells_per_stage=cells_per_stage, max_epochs=epochs, batch_size=batch_size,
                            lr=lr, device=device, threads_per_worker=threads, clock=clock)
    monitor = drift_monitor(space, drift_cells, drift_repeats)
    started = time.perf_counter()
    frames, seconds, drift = [], {}, {}
    chosen = strategies.split(",")
    searches = [PNAS(space, backend, K=K, seed=seed, eval_chunk=8, drift_monitor=monitor),
                POPNAS(space, backend, K=K, seed=seed, eval_chunk=8, drift_monitor=monitor)]
    for strategy in searches:
        if strategy.name in chosen:
            begin = time.perf_counter()
            strategy.run(work / strategy.name)
            seconds[strategy.name] = time.perf_counter() - begin
    runs = {strategy.name: SearchRun(work / strategy.name, strategy.settings()) for strategy in searches}
    completed = {name: run.completed_steps for name, run in runs.items()}
    if min(completed.values()) < max_blocks and not partial:
        log.warning("not every search is complete in %s yet (%s steps of %d): the table is written once "
                    "they are, or with --partial", work, completed, max_blocks)
        return pd.DataFrame()
    for name, run in runs.items():
        # completed steps only (a step in progress is not in the table), and the timings of their starts
        frames.append(run.all_tables("trained").assign(strategy=name))
        timings = run.all_reference_timings()
        drift[name] = drift_report(timings[timings["step"] <= completed[name]] if len(timings) else timings)
    table = pd.concat(frames, ignore_index=True)
    atomic_write_frame(table, out)
    provenance = {
        "note": note,
        "command": " ".join([Path(sys.executable).name, "-m", "ablations.record_measured_table", *sys.argv[1:]]),
        "settings": {"space": "pnas", "max_blocks": max_blocks, "K": K, "epochs": epochs,
                     "filters": filters, "cells_per_stage": cells_per_stage, "batch_size": batch_size,
                     "lr": lr, "seed": seed, "threads": threads, "device": device, "dataset": "digits",
                     "clock": clock, "drift_cells": drift_cells, "drift_repeats": drift_repeats},
        # the clock train_time follows, as resolved per row ("auto" is resolved in the worker)
        "clock": "+".join(sorted(table["clock"].astype(str).unique())) if "clock" in table else clock,
        "measured_at_commits": sorted(table["git_commit"].astype(str).unique().tolist()),
        "drift": drift,
        "cells_in_both_runs": cross_run_agreement(table),
        "backend_options": backend.options(),
        "environment": {**environment(), "torch": torch.__version__, "cpu_count": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()),
                        "platform": platform.platform(),
                        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "rows": {name: int((table["strategy"] == name).sum()) for name in ("pnas", "popnas")},
        "completed_steps": completed,
        "search_seconds_this_invocation": seconds,
        "total_train_time_seconds": {name: float(table.loc[table["strategy"] == name, "train_time"].sum())
                                     for name in ("pnas", "popnas")},
        "total_wall_time_seconds": {name: float(table.loc[table["strategy"] == name, "wall_time"].sum())
                                    for name in ("pnas", "popnas")},
        "wall_seconds_this_invocation": time.perf_counter() - started,
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(provenance, indent=2, default=str))
    return table


def drift_monitor(space: CellSpace, cells: int, repeats: int) -> DriftMonitor | None:
    """The monitor re-timing the first ``cells`` symmetric one-block cells (``None`` for 0)."""
    reference = symmetric_one_block_cells(space)
    if not 0 <= cells <= len(reference) or cells == 1:
        raise ValueError(f"--drift-cells must be 0 or 2..{len(reference)}, got {cells}")
    return DriftMonitor(cells=tuple(reference[:cells]), repeats=repeats) if cells else None


def cross_run_agreement(table: pd.DataFrame) -> dict[str, Any]:
    """How alike the two searches timed the cells both trained (all of step 1, same seed, so the same
    training): per clock, the median of ``|t_pnas - t_popnas| / mean`` and Kendall's tau-b."""
    runs = [table[table["strategy"] == name].drop_duplicates("cell").set_index("cell") for name in ("pnas", "popnas")]
    common = runs[0].index.intersection(runs[1].index)
    result: dict[str, Any] = {"cells": int(len(common))}
    for column in (c for c in ("train_time", "cpu_time", "wall_time") if c in table.columns):
        a, b = (run.loc[common, column].to_numpy(np.float64) for run in runs)
        result[column] = {"relative_deviation": float(np.median(np.abs(a - b) / ((a + b) / 2))),
                          "tau": float(kendalltau(a, b).statistic)} if len(common) > 1 else {}
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m ablations.record_measured_table [--option value ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EMBEDDED_TABLE)
    parser.add_argument("--work", type=Path, default=Path("outputs/record_measured_table"))
    parser.add_argument("--strategies", default="pnas,popnas")
    parser.add_argument("--note", default="", help="how the recording was made, stored in the JSON")
    parser.add_argument("--partial", action="store_true",
                        help="write the table from the completed steps, even if a search is unfinished")
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    record_measured_table(**args)


if __name__ == "__main__":
    main()
