"""A search's output folder: per-step tables, evaluations as they are measured, and resume.

Layout of ``output_dir``::

    search.json              settings of the run (a resumed run must match them)
    evaluations/part-*.parquet
                             every evaluation, appended chunk by chunk as measured
    steps/step=01/trained.parquet, candidates.parquet, pareto.parquet, predictor.npz
                             (the predictor fitted after that step, which the next one reads;
                             the last step has none)
    drift/step=01.parquet    reference-cell timings of a drift monitor, if the run has one
                             (``harness.search.drift``), written once complete
    progress.json            {"completed_steps": n}, rewritten atomically after a step's files

A step counts as done only once ``progress.json`` says so; its files are
written before that, each atomically. A run killed mid-step restarts that
step: its choices are recomputed deterministically (same seed, same data,
same saved predictor), and the cells it had already evaluated are read back
from ``evaluations/`` instead of being measured again.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness.store import ResultsStore, atomic_write_bytes, atomic_write_frame, atomic_write_text

#: The tables a step may write, by name.
STEP_TABLES = ("trained", "candidates", "pareto")


class SearchRun:
    """Where one search keeps its state; in memory when ``output_dir`` is ``None``."""

    def __init__(self, output_dir: str | Path | None, settings: dict[str, Any]) -> None:
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.settings = settings
        self._memory: dict[int, dict[str, Any]] = {}
        self._evaluated: list[pd.DataFrame] = []
        self._drift: dict[int, pd.DataFrame] = {}
        if self.output_dir is not None:
            self._open_folder(self.output_dir)

    # ------------------------------------------------------------------ folder
    def _open_folder(self, output_dir: Path) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / "search.json"
        wanted = json.loads(json.dumps(self.settings, sort_keys=True, default=str))
        if path.exists():
            found = json.loads(path.read_text())
            if found != wanted:
                changed = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
                raise ValueError(
                    f"{output_dir} holds a search with other settings (differing: {changed}); "
                    "use another output_dir or the same settings to resume"
                )
        else:
            atomic_write_text(path, json.dumps(wanted, indent=2, sort_keys=True))
        self.store = ResultsStore(output_dir / "evaluations")

    def _step_dir(self, step: int) -> Path:
        # only called on runs with a folder (the in-memory paths return before)
        assert self.output_dir is not None
        return self.output_dir / "steps" / f"step={step:02d}"

    # ------------------------------------------------------------------ progress
    @property
    def completed_steps(self) -> int:
        """Number of steps whose results are complete."""
        if self.output_dir is None:
            return len(self._memory)
        path = self.output_dir / "progress.json"
        return json.loads(path.read_text())["completed_steps"] if path.exists() else 0

    def complete_step(self, step: int, tables: dict[str, pd.DataFrame],
                      predictor_state: dict[str, np.ndarray] | None) -> None:
        """Save a finished step's tables and predictor state, then mark it done."""
        if self.output_dir is None:
            self._memory[step] = {"tables": tables, "predictor": predictor_state}
            return
        folder = self._step_dir(step)
        for name, frame in tables.items():
            atomic_write_frame(frame, folder / f"{name}.parquet")
        if predictor_state is not None:
            buffer = io.BytesIO()
            # numpy's stub reads the ``**arrays`` as possibly its ``allow_pickle`` flag
            np.savez(buffer, **predictor_state)  # type: ignore[arg-type]
            atomic_write_bytes(folder / "predictor.npz", buffer.getvalue())
        atomic_write_text(self.output_dir / "progress.json", json.dumps({"completed_steps": step}))

    def table(self, step: int, name: str) -> pd.DataFrame:
        """Table ``name`` of a completed step (empty when the step wrote none)."""
        if self.output_dir is None:
            return self._memory[step]["tables"].get(name, pd.DataFrame())
        path = self._step_dir(step) / f"{name}.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

    def predictor_state(self, step: int) -> dict[str, np.ndarray] | None:
        """Predictor state saved after ``step`` (``None`` when there was none)."""
        if self.output_dir is None:
            return self._memory[step]["predictor"]
        path = self._step_dir(step) / "predictor.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    def all_tables(self, name: str) -> pd.DataFrame:
        """Table ``name`` of every completed step, concatenated."""
        frames = [self.table(step, name) for step in range(1, self.completed_steps + 1)]
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # ------------------------------------------------------------------ drift monitor
    def reference_timings(self, step: int) -> pd.DataFrame | None:
        """The drift monitor's timings of ``step``, or ``None`` when they were not completed."""
        if self.output_dir is None:
            return self._drift.get(step)
        path = self.output_dir / "drift" / f"step={step:02d}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def save_reference_timings(self, step: int, timings: pd.DataFrame) -> None:
        """Keep ``step``'s complete reference timings (one atomic file: a kill loses all or none)."""
        if self.output_dir is None:
            self._drift[step] = timings
        else:
            atomic_write_frame(timings, self.output_dir / "drift" / f"step={step:02d}.parquet")

    def all_reference_timings(self) -> pd.DataFrame:
        """Every saved step's reference timings, concatenated (empty without a drift monitor)."""
        if self.output_dir is None:
            frames = [self._drift[step] for step in sorted(self._drift)]
        else:
            frames = [pd.read_parquet(p) for p in sorted((self.output_dir / "drift").glob("step=*.parquet"))]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # ------------------------------------------------------------------ evaluations
    def evaluate(self, step: int, cell_texts: list[str], evaluate: Callable[[list[str]], pd.DataFrame],
                 chunk: int | None) -> pd.DataFrame:
        """Rows for ``cell_texts`` at ``step``, in order; measured in chunks, each stored at once.

        Cells this step already measured before a kill are read back, not
        measured twice.
        """
        done = self._measured(step)
        todo = [c for c in dict.fromkeys(cell_texts) if c not in done.index]
        size = chunk or max(len(todo), 1)
        # joined once at the end, and never with an empty frame: pandas would make its integer
        # columns float, so a step run in one go would write other types than a resumed one
        measured = [done] if len(done) else []
        for start in range(0, len(todo), size):
            rows = evaluate(todo[start:start + size]).assign(step=step)
            self._append(rows)
            measured.append(rows.set_index("cell", drop=False))
        done = pd.concat(measured) if measured else done
        return done.loc[cell_texts].reset_index(drop=True)

    def _measured(self, step: int) -> pd.DataFrame:
        frames = self._evaluated if self.output_dir is None else [self.store.read()]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame(columns=["cell"]).set_index("cell", drop=False)
        rows = pd.concat(frames, ignore_index=True)
        rows = rows[rows["step"] == step]
        return rows.drop_duplicates("cell").set_index("cell", drop=False)

    def _append(self, rows: pd.DataFrame) -> None:
        if self.output_dir is None:
            self._evaluated.append(rows)
        else:
            self.store.append(rows)
