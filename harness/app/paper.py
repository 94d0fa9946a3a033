"""The main job: every study at the configured scale, into ``tables/``, ``figures/`` and ``report.md``.

``run_paper(output_dir, studies, settings)`` is what ``popnas-harness experiment=paper`` calls; a
notebook can call it too. Each study module owns its computation and its report section
(``sections(run)``); this runner checks the settings, loops over the chosen studies in report order
and writes the report.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ablations import (
    fidelity_dial,
    nb201_searches,
    nb201_studies,
    pnas_table1,
    popnas_time_regressors,
    search_comparisons,
    space_counts,
    surrogate_calibration,
    thesis_kendall_fidelity,
    thesis_rastrigin,
)
from ablations.report import TableSection, write_report
from ablations.run import PaperRun
from ablations.settings import PaperSettings
from harness.provenance import environment
from harness.store import ResultsStore

log = logging.getLogger(__name__)


#: Study id -> its module's builder of its report sections, in report order.
STUDIES: dict[str, Callable[[PaperRun], list[TableSection]]] = {
    "space_counts": space_counts.sections,
    "surrogate_calibration": surrogate_calibration.sections,
    "popnas_regressors": popnas_time_regressors.sections,
    "popnas_searches": search_comparisons.popnas_searches_sections,
    "popnas_time_limit": search_comparisons.time_limit_sections,
    "pnas_table1": pnas_table1.sections,
    "pnas_fig4": search_comparisons.fig4_sections,
    "thesis_rastrigin": thesis_rastrigin.sections,
    "thesis_kendall_fidelity": thesis_kendall_fidelity.sections,
    "nb201": nb201_studies.sections,
    "nb201_pnas_vs_popnas": nb201_searches.sections,
    "fidelity_dial": fidelity_dial.sections,
    "fidelity_dial_nb201": fidelity_dial.nb201_sections,
}


def run_paper(output_dir: str | Path, studies: list[str] | None = None,
              settings: PaperSettings | Mapping[str, Any] | None = None) -> list[TableSection]:
    """Run ``studies`` (default: all) and write ``tables/``, ``figures/`` and ``report.md``.

    Every setting is checked first (:meth:`ablations.settings.PaperSettings.of`: a plain mapping
    becomes the typed settings, an unknown key fails naming it). The run's ``evaluations/`` table is
    compacted at the end, so it reads as one file.
    """
    chosen = list(STUDIES) if studies is None else list(studies)
    unknown = [s for s in chosen if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {list(STUDIES)}")
    run = PaperRun(Path(output_dir), PaperSettings.of(settings))
    sections = []
    for number, study in enumerate(chosen, start=1):
        start = time.perf_counter()
        log.info("[%d/%d] study %s: running", number, len(chosen), study)
        sections += STUDIES[study](run)
        log.info("[%d/%d] study %s: done in %.1f s", number, len(chosen), study, time.perf_counter() - start)
    env = environment()
    header = "\n".join([
        "# popnas-harness report",
        "",
        "Our values are computed by this run; the papers' values stand beside them for comparison only "
        "(the `paper` column, never written into `tables/`). Differences in backend (surrogate versus "
        "real training), scale and settings are stated with each table.",
        "",
        "Run: " + ", ".join(f"{k}={v}" for k, v in env.items()),
        "",
    ])
    write_report(run.output_dir, sections, header)
    ResultsStore(run.output_dir / "evaluations").compact()
    return sections


__all__ = ["STUDIES", "run_paper"]
