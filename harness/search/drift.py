"""Drift monitor: re-time a fixed set of reference cells at every step of a search.

A search's training times are only comparable across steps if the machine
ran at the same speed throughout. :class:`DriftMonitor` measures that: at
the start of every step, before the step trains anything, the search
evaluates the same reference cells ``repeats`` times through its own
backend, with its own epochs and seed, so in the same worker conditions as
the step's cells. From those timings :func:`drift_summary` gives, per step,

* ``drift_factor``: the median over reference cells of the cell's mean time
  at this step divided by its mean time at step 1 (1.0 = same speed; 1.5 =
  everything took 1.5x longer than at step 1);
* ``relative_deviation``: the median, over cells and pairs of repeats, of
  ``|t_a - t_b| / mean(t_a, t_b)``, the relative difference between two
  measurements of the same cell in the same step;
* ``tau``: Kendall's tau-b between repeats of the reference set (mean over
  pairs of repeats): whether the repeats rank the reference cells alike;
* ``noise_floor``: the mean relative error a predictor of each cell's
  expected time could not go below, ``mean |t_a - t_b| / mean / sqrt(2)``
  (for independent noise ``E|t_a - t_b| = sqrt(2) E|t - mu|``).

The default reference set is the 8 symmetric one-block cells
``(-1, op, -1, op)`` whose times dynamic re-index needs (POPNAS 3.3.4): one
per operator, so they span the operators' costs. Reference timings are
kept apart from the search's evaluations (``drift/step=NN.parquet`` in the
run folder, written atomically once a step's timings are complete, so a
resumed run re-times only a step whose timings were lost) and never enter
the ``trained`` tables or the predictors. Any backend works: on a
deterministic one (a table, the surrogate without noise) the factor is 1
and the noise 0.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from harness.evaluator import Backend
from harness.operators import PNAS_ORDER
from harness.search_space import SearchSpace
from harness.store import atomic_write_text
from harness.validation import check_integer

#: Columns of a step's reference timings.
TIMING_COLUMNS = ("step", "repeat", "cell", "train_time")


def symmetric_one_block_cells(space: SearchSpace) -> list[str]:
    """The cells ``(-1, op, -1, op)`` of ``space``, one per operator, in the global operator order."""
    # the texts of a batch (``format`` of one cell would be a str)
    return cast("list[str]", space.format(space.batch([f"(-1,{op},-1,{op})" for op in PNAS_ORDER])))


@dataclass(frozen=True)
class DriftMonitor:
    """Re-times ``cells`` (default: :func:`symmetric_one_block_cells`) ``repeats`` times per step.

    Parameters
    ----------
    cells:
        cell texts of the search's space; ``None`` takes the 8 symmetric
        one-block cells.
    repeats:
        measurements of each cell per step, at least 2 (the noise is the
        difference between repeats). The repeats are interleaved (all
        cells once, then all again), so a slow spell hits different cells
        rather than both repeats of one.
    """

    cells: tuple[str, ...] | None = None
    repeats: int = 2

    def __post_init__(self) -> None:
        check_integer("DriftMonitor repeats", self.repeats, minimum=2)
        if self.cells is not None and len(self.cells) < 2:
            raise ValueError(f"DriftMonitor needs at least 2 reference cells, got {self.cells!r}")

    def reference_cells(self, space: SearchSpace) -> list[str]:
        """The reference cells as canonical texts of ``space`` (checked against it)."""
        if self.cells is None:
            return symmetric_one_block_cells(space)
        return cast("list[str]", space.format(space.batch(list(self.cells))))

    def settings(self, space: SearchSpace) -> dict[str, Any]:
        """What the monitor does, for the run's ``search.json``."""
        return {"cells": self.reference_cells(space), "repeats": int(self.repeats)}

    def measure(self, backend: Backend, step: int, epochs: int, seed: int) -> pd.DataFrame:
        """One step's reference timings: :data:`TIMING_COLUMNS` plus the backend's clock columns."""
        cells = self.reference_cells(backend.space)
        frame = backend.evaluate(cells * int(self.repeats), epochs=epochs, seed=seed)
        keep = [c for c in ("train_time", "wall_time", "cpu_time", "clock") if c in frame.columns]
        timings = frame[keep].copy()
        timings.insert(0, "cell", frame["cell"].to_numpy())
        timings.insert(0, "repeat", np.repeat(np.arange(int(self.repeats)), len(cells)))
        timings.insert(0, "step", step)
        return timings


def drift_summary(timings: pd.DataFrame, column: str = "train_time") -> pd.DataFrame:
    """Per step: ``drift_factor``, ``relative_deviation``, ``tau``, ``noise_floor`` (module docstring).

    ``timings`` has :data:`TIMING_COLUMNS` (``column`` instead of
    ``train_time`` to summarise another clock), several steps' worth.
    """
    missing = [c for c in ("step", "repeat", "cell", column) if c not in timings.columns]
    if missing:
        raise ValueError(f"reference timings lack the columns {missing}")
    if timings.empty:
        return pd.DataFrame(columns=["step", "drift_factor", "relative_deviation", "tau", "noise_floor"])
    times = timings.pivot_table(index=["step", "cell"], columns="repeat", values=column, aggfunc="mean")
    if not np.all(np.isfinite(times.to_numpy())) or not (times.to_numpy() > 0).all():
        raise ValueError(f"reference timings need positive finite {column} for every step, cell and repeat")
    first_step = times.index.get_level_values("step").min()
    baseline = times.mean(axis=1).xs(first_step, level="step")
    rows = []
    for step, per_cell in times.groupby(level="step"):
        per_cell = per_cell.droplevel("step")
        pairs = list(itertools.combinations(per_cell.columns, 2))
        differences = _pair_differences(per_cell)
        taus = [kendalltau(per_cell[a], per_cell[b]).statistic for a, b in pairs]
        ratio = (per_cell.mean(axis=1) / baseline.reindex(per_cell.index)).dropna()
        rows.append({
            "step": int(step),
            "drift_factor": float(np.median(ratio)) if len(ratio) else math.nan,
            "relative_deviation": float(np.median(differences)),
            "tau": float(np.nanmean(taus)) if not np.all(np.isnan(taus)) else math.nan,
            "noise_floor": float(differences.mean() / math.sqrt(2)),
        })
    return pd.DataFrame(rows)


def _pair_differences(per_cell: pd.DataFrame) -> np.ndarray:
    """``|t_a - t_b| / mean(t_a, t_b)`` for every cell (row) and pair of repeats (columns)."""
    return np.concatenate([
        ((per_cell[a] - per_cell[b]).abs() / ((per_cell[a] + per_cell[b]) / 2)).to_numpy()
        for a, b in itertools.combinations(per_cell.columns, 2)])


def pooled_noise(timings: pd.DataFrame, column: str = "train_time") -> dict[str, float]:
    """The run's noise over all steps: ``relative_deviation`` (median over every cell, step and pair
    of repeats), ``tau`` (median of the steps'), ``noise_floor`` (over every pair), ``drift_min`` and
    ``drift_max`` (the range of the steps' drift factors)."""
    summary = drift_summary(timings, column)
    if summary.empty:
        return {}
    times = timings.pivot_table(index=["step", "cell"], columns="repeat", values=column, aggfunc="mean")
    differences = _pair_differences(times)
    return {
        "relative_deviation": float(np.median(differences)),
        "tau": float(summary["tau"].median()),
        "noise_floor": float(differences.mean() / math.sqrt(2)),
        "drift_min": float(summary["drift_factor"].min()),
        "drift_max": float(summary["drift_factor"].max()),
        "steps": int(len(summary)),
    }


def drift_report(timings: pd.DataFrame) -> dict[str, Any]:
    """Pooled and per-step summary of ``timings`` for every clock column they have (JSON-ready)."""
    clocks = [c for c in ("train_time", "cpu_time", "wall_time") if c in timings.columns]
    return {column: {"pooled": pooled_noise(timings, column),
                     "per_step": drift_summary(timings, column).to_dict(orient="records")}
            for column in clocks}


def write_drift_summary(path: Path, timings: pd.DataFrame) -> None:
    """Write :func:`drift_report` of ``timings`` to ``path`` as JSON, atomically."""
    atomic_write_text(path, json.dumps(drift_report(timings), indent=2))
