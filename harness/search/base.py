"""What every search strategy shares: settings, the step loop with checkpoints, and results."""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from harness.evaluator import Backend
from harness.search.checkpoint import SearchRun
from harness.search.drift import DriftMonitor, write_drift_summary
from harness.search_space import CellBatchLike, SearchSpace
from harness.validation import check_integer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    """The tables a search produced (the same ones it wrote to its output folder).

    ``trained`` lists every trained cell with its ``step``, ``cell``,
    ``accuracy`` and ``train_time`` (plus the backend's columns and, for
    predictor-guided searches, ``predicted_accuracy``/``predicted_time``);
    ``candidates`` has one summary row per step; ``predictions`` the
    candidates' predictions (all, or a seeded sample plus the front and the
    selected cells when there are very many); ``pareto`` the front per step;
    ``drift`` the drift monitor's reference timings (empty without one; see
    :mod:`harness.search.drift`, whose ``drift_summary`` turns them into
    per-step drift factors and noise).
    """

    strategy: str
    trained: pd.DataFrame
    candidates: pd.DataFrame
    predictions: pd.DataFrame
    pareto: pd.DataFrame
    output_dir: Path | None
    drift: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @classmethod
    def of(cls, run: SearchRun, strategy: str) -> SearchResult:
        """The tables of ``run``'s completed steps."""
        return cls(strategy=strategy, trained=run.all_tables("trained"), candidates=run.all_tables("candidates"),
                   predictions=run.all_tables("predictions"), pareto=run.all_tables("pareto"),
                   drift=run.all_reference_timings(), output_dir=run.output_dir)

    @classmethod
    def load(cls, folder: str | Path) -> SearchResult:
        """The tables of the search stored in ``folder`` (its completed steps), read without running
        anything: the one reader of a search folder (layout: :mod:`harness.search.checkpoint`).

        ``FileNotFoundError`` naming ``folder`` when it holds no search.
        """
        path = Path(folder) / "search.json"
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no search: {path} is missing")
        settings = json.loads(path.read_text())
        return cls.of(SearchRun(folder, settings), settings["strategy"])

    def best(self) -> pd.Series:
        """The trained cell with the highest accuracy (first one on ties)."""
        return self.trained.loc[self.trained["accuracy"].idxmax()]

    def top_m_curve(self, ms: Sequence[int] = (1, 5, 25)) -> pd.DataFrame:
        """Mean accuracy of the top ``M`` models trained so far, after each step (PNAS Fig. 4)."""
        return top_m_curve(self.trained, ms)


def top_m_curve(trained: pd.DataFrame, ms: Sequence[int] = (1, 5, 25)) -> pd.DataFrame:
    """``step, models_trained, M, mean_top_accuracy`` of a ``trained`` table (PNAS Fig. 4's curve)."""
    rows = []
    cells = trained[trained["blocks"] > 0]
    for step in sorted(cells["step"].unique()):
        seen = cells[cells["step"] <= step]["accuracy"].sort_values(ascending=False)
        for m in ms:
            rows.append({"step": int(step), "models_trained": len(seen), "M": m,
                         "mean_top_accuracy": float(seen.iloc[:m].mean())})
    return pd.DataFrame(rows)


class Strategy(abc.ABC):
    """A search over a :class:`~harness.search_space.SearchSpace` with any backend, run step by step
    with checkpoints.

    Subclasses implement :meth:`_step`, which chooses the cells of one step,
    trains them through :meth:`_train` and returns the step's tables.
    Everything random is drawn from ``np.random.default_rng([seed, step])``,
    so a resumed step repeats the choices of the killed one. A
    ``drift_monitor`` (:class:`harness.search.drift.DriftMonitor`) re-times
    its reference cells at the start of every step.
    """

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, backend: Backend, *, K: int = 256, epochs: int | None = None,
                 seed: int = 0, eval_chunk: int | None = None,
                 drift_monitor: DriftMonitor | None = None) -> None:
        check_integer("K", K)
        if backend.space != space:
            raise ValueError(
                f"the backend evaluates cells of {backend.space!r}, but the search runs in {space!r}"
            )
        self.space = space
        self.backend = backend
        self.K = int(K)
        self.epochs = backend.check_epochs(epochs)
        self.seed = int(seed)
        self.eval_chunk = eval_chunk
        if drift_monitor is not None and not isinstance(drift_monitor, DriftMonitor):
            raise ValueError(f"drift_monitor must be a DriftMonitor or None, got {drift_monitor!r}")
        self.drift_monitor = drift_monitor
        if drift_monitor is not None:
            drift_monitor.reference_cells(space)  # cells outside the space fail here, not mid-run

    @property
    def num_steps(self) -> int:
        """Number of steps: one per block count, as in PNAS."""
        return self.space.max_blocks

    def settings(self) -> dict[str, Any]:
        """The run's settings, stored in ``search.json`` (a resume must match them)."""
        return {
            "strategy": self.name, **self.space.settings(), "K": self.K, "epochs": self.epochs, "seed": self.seed,
            "backend": self.backend.name, "backend_options": self.backend.options(),
            # only with a monitor, so folders of runs without one still resume
            **({"drift_monitor": self.drift_monitor.settings(self.space)} if self.drift_monitor else {}),
        }

    def run(self, output_dir: str | Path | None = None) -> SearchResult:
        """Run every remaining step and return all tables; resumes a run found in ``output_dir``."""
        run = SearchRun(output_dir, self.settings())
        if run.completed_steps:
            log.info("%s: resuming %s after step %d", self.name, run.output_dir, run.completed_steps)
        for step in range(run.completed_steps + 1, self.num_steps + 1):
            start = time.perf_counter()
            if self.drift_monitor is not None and run.reference_timings(step) is None:
                # before the step's cells: the step's machine conditions, not yet its own load
                run.save_reference_timings(
                    step, self.drift_monitor.measure(self.backend, step, self.epochs, self.seed))
                if run.output_dir is not None:
                    write_drift_summary(run.output_dir / "drift" / "summary.json", run.all_reference_timings())
            tables, predictor_state = self._step(step, run, np.random.default_rng([self.seed, step]))
            run.complete_step(step, tables, predictor_state)
            log.info("%s step %d/%d: trained %d cells in %.1f s", self.name, step, self.num_steps,
                     len(tables["trained"]), time.perf_counter() - start)
        return SearchResult.of(run, self.name)

    @abc.abstractmethod
    def _step(self, step: int, run: SearchRun, rng: np.random.Generator
              ) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray] | None]:
        """Choose and train one step's cells; return its tables and the predictor state."""

    def _train(self, run: SearchRun, step: int, cells: CellBatchLike,
               extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        """Evaluate ``cells`` through the backend (resumably) and add ``extra`` columns."""
        texts = self.space.format(cells)
        rows = run.evaluate(step, texts,
                            lambda chunk: self.backend.evaluate(chunk, self.epochs, self.seed),
                            self.eval_chunk)
        front = ["step", "cell", "blocks", "accuracy", "train_time"]
        rows = rows[front + [c for c in rows.columns if c not in front]]
        for key, values in (extra or {}).items():
            rows[key] = values
        return rows

    @staticmethod
    def _history(run: SearchRun) -> pd.DataFrame:
        """All cells trained in the completed steps."""
        return run.all_tables("trained")
