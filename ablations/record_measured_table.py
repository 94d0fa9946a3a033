"""Record the embedded measured table: PNAS, POPNAS and POPNAS v1 runs with real training, one table.

The table that ``backends.make("table")`` serves by default, and that the
main job uses wherever a study needs real training times. Regenerate it with
(on a GPU too: add ``--device cuda --out backends/data/measured_digits_cuda.parquet``)::

    python -m ablations.record_measured_table --clock cpu

The searches (PNAS, POPNAS, and POPNAS's v1 preset ``POPNAS.v1``) run in the PNAS space through the training backend on
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
from backends.table import EMBEDDED_TABLE, read_table_file
from harness import CellSpace
from harness.evaluator import Backend
from harness.provenance import environment
from harness.search import PNAS, POPNAS
from harness.search.base import Strategy
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


def recorded_searches(space: CellSpace, backend: Backend, K: int, seed: int,
                      monitor: DriftMonitor | None) -> dict[str, Strategy]:
    """The searches a measured table can hold, by their ``strategy`` label: PNAS, POPNAS (strict
    front) and POPNAS as its published code ran it (``POPNAS.v1``: v1 front, integer time
    features, LSTM controller)."""
    common = {"K": K, "seed": seed, "eval_chunk": 8, "drift_monitor": monitor}
    return {"pnas": PNAS(space, backend, **common), "popnas": POPNAS(space, backend, **common),
            "popnas_v1": POPNAS.v1(space, backend, **common)}


def record_measured_table(out: Path, work: Path, max_blocks: int, K: int, epochs: int, filters: int,
                          cells_per_stage: int, batch_size: int, lr: float, seed: int,
                          threads: int, device: str, clock: str, drift_cells: int, drift_repeats: int,
                          strategies: str = "pnas,popnas,popnas_v1", note: str = "", partial: bool = False
                          ) -> pd.DataFrame:
    """Run the searches ``strategies`` with real training and write every recorded search to ``out``.

    ``strategies`` picks which searches (labels of :func:`recorded_searches`,
    comma-separated, possibly none) this invocation runs. Each of the others
    is read from its folder under ``work`` when complete there, else kept
    from the table already at ``out`` if that table was recorded with the
    same settings, so a search can be added to the committed table without
    re-recording the others, and two invocations, one per search, can record
    in parallel on two cores. ``drift_cells`` (0 = no monitor) and
    ``drift_repeats`` configure the drift monitor. ``note`` is stored in the
    provenance (how and where it was recorded, and why any setting was
    reduced); each search keeps the provenance of the invocation that
    recorded it under ``recordings``. With ``partial`` the table is written
    from the steps completed so far (``completed_steps`` says how many)
    instead of waiting for every step. Each search's per-step ``candidates``
    summary (candidates, front size ...) goes to ``<out>.candidates.parquet``.
    """
    import torch

    torch.set_num_threads(threads)
    settings = {"space": "pnas", "max_blocks": max_blocks, "K": K, "epochs": epochs,
                "filters": filters, "cells_per_stage": cells_per_stage, "batch_size": batch_size,
                "lr": lr, "seed": seed, "threads": threads, "device": device, "dataset": "digits",
                "clock": clock, "drift_cells": drift_cells, "drift_repeats": drift_repeats}
    space = CellSpace.pnas(max_blocks=max_blocks)
    backend = backends.make("training", space=space, dataset="digits", filters=filters,
                            cells_per_stage=cells_per_stage, max_epochs=epochs, batch_size=batch_size,
                            lr=lr, device=device, threads_per_worker=threads, clock=clock)
    searches = recorded_searches(space, backend, K, seed, drift_monitor(space, drift_cells, drift_repeats))
    chosen = [label for label in strategies.split(",") if label]
    unknown = sorted(set(chosen) - set(searches))
    if unknown:
        raise ValueError(f"--strategies {strategies!r}: unknown search(es) {unknown}; known: {sorted(searches)}")
    started = time.perf_counter()
    seconds = {}
    for label in chosen:
        begin = time.perf_counter()
        searches[label].run(work / label)
        seconds[label] = time.perf_counter() - begin

    sidecar, candidates_path = out.with_suffix(".json"), out.with_suffix(".candidates.parquet")
    previous = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    if previous and previous.get("settings") != settings:
        log.warning("the table at %s was recorded with other settings (%s): none of its rows are kept",
                    out, previous.get("settings"))
        previous = {}
    this_invocation = {"note": note, "command": " ".join([Path(sys.executable).name, "-m",
                                                           "ablations.record_measured_table", *sys.argv[1:]]),
                       "search_seconds": seconds, "environment": recording_environment(torch)}
    gathered = gather_recordings(searches, chosen, work, partial, this_invocation, previous,
                                 read_table_file(out) if previous and out.exists() else None,
                                 pd.read_parquet(candidates_path) if previous and candidates_path.exists() else None)
    if gathered is None:
        return pd.DataFrame()
    frames, summaries, drift, completed, recordings = gathered
    if not frames:
        raise ValueError(f"nothing to write to {out}: no search was run, complete in {work} or in the table")
    table = pd.concat(frames, ignore_index=True)
    atomic_write_frame(table, out)
    summaries = [frame for frame in summaries if len(frame)]
    if summaries:
        atomic_write_frame(pd.concat(summaries, ignore_index=True), candidates_path)
    labels = list(dict.fromkeys(table["strategy"]))
    provenance = {
        "note": "; ".join(dict.fromkeys(r["note"] for r in recordings.values() if r.get("note"))),
        "settings": settings,
        # the clock train_time follows, as resolved per row ("auto" is resolved in the worker)
        "clock": "+".join(sorted(table["clock"].astype(str).unique())) if "clock" in table else clock,
        "measured_at_commits": sorted(table["git_commit"].astype(str).unique().tolist()),
        "drift": drift,
        "cells_in_both_runs": cross_run_agreement(table),
        "backend_options": backend.options(),
        "environment": this_invocation["environment"],
        "rows": {name: int((table["strategy"] == name).sum()) for name in labels},
        "completed_steps": completed,
        "recordings": recordings,
        "total_train_time_seconds": {name: float(table.loc[table["strategy"] == name, "train_time"].sum())
                                     for name in labels},
        "total_wall_time_seconds": {name: float(table.loc[table["strategy"] == name, "wall_time"].sum())
                                    for name in labels} if "wall_time" in table else {},
        "wall_seconds_this_invocation": time.perf_counter() - started,
    }
    atomic_write_text(sidecar, json.dumps(provenance, indent=2, default=str))
    return table


def gather_recordings(searches: dict[str, Strategy], chosen: list[str], work: Path, partial: bool,
                      this_invocation: dict[str, Any], previous: dict[str, Any], previous_table: pd.DataFrame | None,
                      previous_candidates: pd.DataFrame | None) -> tuple[list, list, dict, dict, dict] | None:
    """Per search: its ``trained`` rows and ``candidates`` summaries, drift summary, completed steps
    and recording provenance, from its folder under ``work`` (run now, or complete there) or else
    from the table already written (``previous`` is its provenance, ``{}`` for none). ``None`` while
    a search run now is incomplete and ``partial`` is off."""
    empty = pd.DataFrame(columns=["strategy"])
    previous_table = empty if previous_table is None else previous_table
    previous_candidates = empty if previous_candidates is None else previous_candidates
    frames, summaries, drift, completed, recordings = [], [], {}, {}, {}
    for label, search in searches.items():
        run = SearchRun(work / label, search.settings())
        if label in chosen or run.completed_steps == search.num_steps or (partial and run.completed_steps):
            completed[label] = run.completed_steps
            if completed[label] < search.num_steps and not partial:
                log.warning("%s has %d of %d steps in %s: the table is written once it is complete, or "
                            "with --partial", label, completed[label], search.num_steps, work / label)
                return None
            # completed steps only (a step in progress is not in the table), and the timings of their starts
            frames.append(run.all_tables("trained").assign(strategy=label))
            summaries.append(run.all_tables("candidates").assign(strategy=label))
            timings = run.all_reference_timings()
            drift[label] = drift_report(timings[timings["step"] <= completed[label]] if len(timings) else timings)
            # a search complete in its folder and not run now keeps the provenance of the run that recorded it
            recordings[label] = (this_invocation if label in chosen
                                 else previous.get("recordings", {}).get(label, this_invocation))
        elif (previous_table["strategy"] == label).any():
            frames.append(previous_table[previous_table["strategy"] == label])
            summaries.append(previous_candidates[previous_candidates["strategy"] == label])
            for key, store in (("drift", drift), ("completed_steps", completed)):
                if label in previous.get(key, {}):
                    store[label] = previous[key][label]
            # a table written before provenance was kept per recording holds its one invocation's at the top
            recordings[label] = previous.get("recordings", {}).get(label, {
                "note": previous.get("note", ""), "command": previous.get("command", ""),
                "search_seconds": previous.get("search_seconds_this_invocation", {}),
                "environment": previous.get("environment", {})})
    return frames, summaries, drift, completed, recordings


def recording_environment(torch: Any) -> dict[str, Any]:
    """Hardware and library versions of this invocation (torch passed in: it is imported lazily)."""
    return {**environment(), "torch": torch.__version__, "cpu_count": str(os.cpu_count()),
            "torch_threads": str(torch.get_num_threads()), "platform": platform.platform(),
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


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
    parser.add_argument("--strategies", default="pnas,popnas,popnas_v1")
    parser.add_argument("--note", default="", help="how the recording was made, stored in the JSON")
    parser.add_argument("--partial", action="store_true",
                        help="write the table from the completed steps, even if a search is unfinished")
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    record_measured_table(**args)


if __name__ == "__main__":
    main()
