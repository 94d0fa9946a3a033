"""What the studies of one main-job run share: its folder, its settings, its searches on the surrogate
(resumable folders under ``searches/``, so a killed run continues where it stopped and a search several
studies use runs once) and the measured table with its provenance.

Backends: the noisy-Rastrigin surrogate everywhere, and the embedded measured table (real training on
digits, recorded by ``python -m ablations.record_measured_table``) wherever a study needs real training
times; a study whose data is missing is reported as skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

import backends
from ablations.settings import NO_MEASURED_TABLE, PaperSettings, PredictorSettings
from backends.table import EMBEDDED_TABLE, load_results_table
from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution, SearchResult
from harness.space import CellSpace

log = logging.getLogger(__name__)


@dataclass
class PaperRun:
    """One main-job run: its folder, settings, and the searches several studies share."""

    output_dir: Path
    settings: PaperSettings = field(default_factory=PaperSettings)

    @property
    def seeds(self) -> list[int]:
        """Seeds of the surrogate searches (results are reported as mean and spread over them)."""
        return list(self.settings.seeds)

    def surrogate(self, space: CellSpace):
        """The surrogate backend of ``space`` with the configured options.

        Wrapped by ``backends.record``, so every evaluation a study makes
        through it is also appended to the run's ``evaluations/`` table.
        """
        return backends.record(backends.make("surrogate", space=space, **self.settings.surrogate),
                               self.output_dir / "evaluations")

    def search(self, strategy: str, max_blocks: int, K: int, seed: int, time_limit: float | None = None,
               predictor: PredictorSettings | None = None) -> pd.DataFrame:
        """``trained`` table of a search on the surrogate (resumable, shared by the studies)."""
        return self.search_result(strategy, max_blocks, K, seed, time_limit, predictor).trained

    def search_result(self, strategy: str, max_blocks: int, K: int, seed: int, time_limit: float | None = None,
                      predictor: PredictorSettings | None = None) -> SearchResult:
        """A search on the surrogate, run (or resumed) in ``searches/``; every table of it.

        PNAS and POPNAS use the configured predictor; ``popnas_v1`` is
        ``POPNAS.v1`` (the published code's front, integer time features,
        the LSTM) with the ``popnas_v1`` setting's options; ``random`` and
        ``evolution`` are PNAS Fig. 4's baselines. ``time_limit`` (POPNAS's
        L, seconds) applies to PNAS too: PNAS with L is POPNAS without a
        front (children predicted slower than L dropped, then top K).
        ``predictor`` replaces the configured one for PNAS and POPNAS; its searches get
        their own folders.
        """
        space = CellSpace.pnas(max_blocks=max_blocks)
        backend = self.surrogate(space)
        limit = "" if time_limit is None else f"-L{time_limit:.6g}"
        own = "" if predictor is None else "-" + predictor.name
        folder = self.output_dir / "searches" / f"{strategy}-B{max_blocks}-K{K}-seed{seed}{limit}{own}"
        options = (self.settings.predictor if predictor is None else predictor).search_options()
        if time_limit is not None and strategy not in ("pnas", "popnas", "popnas_v1"):
            raise ValueError(f"a time limit applies to pnas, popnas and popnas_v1, not {strategy!r}")
        common = {"K": K, "seed": seed}
        if strategy == "pnas" and time_limit is None:
            search = PNAS(space, backend, **common, **options)
        elif strategy in ("pnas", "popnas"):
            search = POPNAS(space, backend, **common, time_limit=time_limit, pareto=strategy == "popnas",
                            **options)
        elif strategy == "popnas_v1":
            search = POPNAS.v1(space, backend, **common, time_limit=time_limit, **self.settings.popnas_v1)
        elif strategy == "random":
            search = RandomSearch(space, backend, **common)
        else:
            search = RegularizedEvolution(space, backend, **common, **self.settings.evolution)
        return search.run(folder)

    @cached_property
    def measured(self) -> pd.DataFrame | None:
        """The measured table (``measured_table`` setting, default the embedded one), or ``None``
        (``"none"``, or no embedded table recorded yet)."""
        if self.settings.measured_table == NO_MEASURED_TABLE:
            return None
        path = self.settings.measured_table or EMBEDDED_TABLE
        try:
            return load_results_table(path, CellSpace.pnas())
        except FileNotFoundError as missing:
            log.warning("no measured table, its studies use the surrogate only: %s", missing)
            return None

    @cached_property
    def measured_provenance(self) -> dict[str, Any]:
        """The measured table's JSON sidecar (its recording's provenance), or ``{}``."""
        sidecar = Path(self.settings.measured_table or EMBEDDED_TABLE).with_suffix(".json")
        return json.loads(sidecar.read_text()) if self.measured is not None and sidecar.exists() else {}

    def measured_drift(self, strategy: str) -> pd.DataFrame | None:
        """Per-step drift summary of the recorded search ``strategy`` (its ``train_time`` clock), or
        ``None`` when the table was recorded without a drift monitor."""
        per_step = self.measured_provenance.get("drift", {}).get(strategy, {}).get("train_time", {})
        return pd.DataFrame(per_step["per_step"]) if per_step.get("per_step") else None

    def measured_run(self, strategy: str) -> pd.DataFrame | None:
        """The recorded search ``strategy`` of the measured table (``step`` and ``strategy`` columns)."""
        if self.measured is None or "strategy" not in self.measured.columns:
            return None
        rows = self.measured[self.measured["strategy"] == strategy].reset_index(drop=True)
        return rows if len(rows) else None

    def measured_candidates(self, strategy: str) -> pd.DataFrame | None:
        """The per-step ``candidates`` summary of a recorded search, if the recording kept one.

        ``ablations.record_measured_table`` writes them beside the table
        (``<table>.candidates.parquet``); runs recorded before it did have none.
        """
        path = Path(self.settings.measured_table or EMBEDDED_TABLE).with_suffix(".candidates.parquet")
        if self.measured is None or not path.exists():
            return None
        rows = pd.read_parquet(path)
        rows = rows[rows["strategy"] == strategy].reset_index(drop=True)
        return rows if len(rows) else None

    def figure(self, name: str) -> Path:
        """Where figure ``name`` goes."""
        return self.output_dir / "figures" / name


__all__ = ["PaperRun"]
