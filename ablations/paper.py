"""The main job under its former path: it is :mod:`harness.app.paper` (the application), each study's
report section is in its own module, and ``PaperRun`` is :mod:`ablations.run`'s. Kept for the callers
written against ``ablations.paper`` (the golden-table test among them)."""

from ablations.run import PaperRun
from harness.app.paper import STUDIES, run_paper

__all__ = ["PaperRun", "STUDIES", "run_paper"]
