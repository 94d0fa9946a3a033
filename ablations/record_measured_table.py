"""Record the embedded measured table: PNAS, POPNAS and POPNAS v1 runs with real training, one table.

The table that ``backends.make("table")`` serves by default, and that the
main job uses wherever a study needs real training times. Regenerate it with
(on a GPU too: add ``--device cuda --out backends/data/measured_digits_cuda.parquet``)::

    python -m ablations.record_measured_table

The searches (PNAS, POPNAS, and POPNAS's v1 preset ``POPNAS.v1``) run in the PNAS space through the training backend on
scikit-learn's digits, each resumable in its own folder under ``--work``
(a killed recording continues where it stopped). Their ``trained`` tables
are joined with a ``strategy`` column and written atomically to ``--out``,
with a JSON sidecar holding the provenance: hardware, library versions,
settings, git commit, wall time and the command.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

import backends
from backends.table import EMBEDDED_TABLE, read_table_file
from harness import CellSpace
from harness.provenance import environment
from harness.search import PNAS, POPNAS
from harness.search.checkpoint import SearchRun
from harness.store import atomic_write_frame, atomic_write_text

log = logging.getLogger(__name__)

#: The settings of the committed table (also the command-line defaults).
DEFAULTS = {
    "max_blocks": 4, "K": 64, "epochs": 5, "filters": 8, "cells_per_stage": 1,
    "batch_size": 128, "lr": 0.01, "seed": 0, "threads": 1, "device": "cpu",
}


def _searches(space: CellSpace, backend, K: int, seed: int) -> dict[str, Any]:
    """The recorded searches by their ``strategy`` label: PNAS, POPNAS, and POPNAS's v1 preset."""
    return {"pnas": PNAS(space, backend, K=K, seed=seed, eval_chunk=8),
            "popnas": POPNAS(space, backend, K=K, seed=seed, eval_chunk=8),
            "popnas_v1": POPNAS.v1(space, backend, K=K, seed=seed, eval_chunk=8)}


def record_measured_table(out: Path, work: Path, max_blocks: int, K: int, epochs: int, filters: int,
                          cells_per_stage: int, batch_size: int, lr: float, seed: int,
                          threads: int, device: str, strategies: str = "pnas,popnas,popnas_v1",
                          note: str = "") -> pd.DataFrame:
    """Run the searches ``strategies`` with real training and write all recorded ``trained`` tables to ``out``.

    ``strategies`` picks which searches (labels of :func:`_searches`,
    comma-separated) this invocation runs; each of the others is read from
    its folder under ``work`` when complete there, else taken from the table
    already at ``out`` (so a search can be added to the committed table
    without re-recording the others). Two invocations, one per search, can
    so record in parallel on two cores. ``note`` is stored in the
    provenance (how and where it was recorded); a search added to an
    existing table gets its own entry under ``recordings``, the table's
    earlier provenance is kept. Each search's per-step ``candidates``
    summary (candidates, front size ...) goes to ``<out>.candidates.parquet``.
    """
    import torch

    torch.set_num_threads(threads)
    space = CellSpace.pnas(max_blocks=max_blocks)
    backend = backends.make("training", space=space, dataset="digits", filters=filters,
                            cells_per_stage=cells_per_stage, max_epochs=epochs, batch_size=batch_size,
                            lr=lr, device=device)
    started = time.perf_counter()
    searches = _searches(space, backend, K, seed)
    chosen = [label for label in strategies.split(",") if label]
    unknown = sorted(set(chosen) - set(searches))
    if unknown:
        raise ValueError(f"--strategies: unknown search(es) {unknown}; choose from {sorted(searches)}")
    seconds = {}
    for label in chosen:
        begin = time.perf_counter()
        searches[label].run(work / label)
        seconds[label] = time.perf_counter() - begin
    candidates_path = out.with_suffix(".candidates.parquet")
    previous = read_table_file(out) if out.exists() else pd.DataFrame(columns=["strategy"])
    previous_candidates = (pd.read_parquet(candidates_path) if candidates_path.exists()
                           else pd.DataFrame(columns=["strategy"]))
    frames, summaries = [], []
    for label, search in searches.items():
        if SearchRun(work / label, search.settings()).completed_steps == search.num_steps:
            # a complete run returns its tables without training anything
            result = search.run(work / label)
            frames.append(result.trained.assign(strategy=label))
            summaries.append(result.candidates.assign(strategy=label))
        elif (previous["strategy"] == label).any():
            frames.append(previous[previous["strategy"] == label])
            summaries.append(previous_candidates[previous_candidates["strategy"] == label])
        else:
            log.warning("%s is neither complete in %s nor in %s: the table is written once it is",
                        label, work / label, out)
            return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    atomic_write_frame(table, out)
    # the per-step candidate summaries (front sizes), which the trained rows do not hold
    summaries = [frame for frame in summaries if len(frame)]
    if summaries:
        atomic_write_frame(pd.concat(summaries, ignore_index=True), candidates_path)
    sidecar = out.with_suffix(".json")
    provenance = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    this_run = {
        "note": note,
        "command": " ".join([Path(sys.executable).name, "-m", "ablations.record_measured_table", *sys.argv[1:]]),
        "settings": {"space": "pnas", "max_blocks": max_blocks, "K": K, "epochs": epochs,
                     "filters": filters, "cells_per_stage": cells_per_stage, "batch_size": batch_size,
                     "lr": lr, "seed": seed, "threads": threads, "device": device, "dataset": "digits"},
        "backend_options": backend.options(),
        "environment": {**environment(), "torch": torch.__version__, "cpu_count": str(torch.get_num_threads()),
                        "platform": platform.platform(),
                        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "search_seconds_this_invocation": seconds,
        "wall_seconds_this_invocation": time.perf_counter() - started,
    }
    if provenance:
        for label in chosen:
            provenance.setdefault("recordings", {})[label] = this_run
    else:
        provenance = this_run
    labels = list(searches)
    provenance["rows"] = {name: int((table["strategy"] == name).sum()) for name in labels}
    provenance["total_train_time_seconds"] = {
        name: float(table.loc[table["strategy"] == name, "train_time"].sum()) for name in labels}
    atomic_write_text(sidecar, json.dumps(provenance, indent=2, default=str))
    return table


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m ablations.record_measured_table [--option value ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EMBEDDED_TABLE)
    parser.add_argument("--work", type=Path, default=Path("outputs/record_measured_table"))
    parser.add_argument("--strategies", default="pnas,popnas,popnas_v1")
    parser.add_argument("--note", default="", help="how the recording was made, stored in the JSON")
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    record_measured_table(**args)


if __name__ == "__main__":
    main()
