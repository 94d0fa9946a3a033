"""Record and replay: keep every evaluation of a backend as a results table.

``backends.record(backend, path)`` wraps any backend; its frames are
returned unchanged and also appended to the table at ``path``, a folder of
parquet parts (:class:`harness.store.ResultsStore`: each evaluation is one
atomically written part, so earlier rows are never rewritten and a killed
run loses at most the evaluation in flight). ``backends.make("table",
path=path)`` serves that folder: the same cells at the same epochs and seed
get the same accuracy and training time back, so a search replayed on the
table makes the same decisions without training anything.

The recorded rows keep the wrapped backend's provenance (its ``backend``,
``git_commit``, ``backend_options`` ...); the table backend serves them as
``source_<column>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from backends.base import Backend
from harness.space import Cell, CellBatch
from harness.store import ResultsStore


class RecordingBackend(Backend):
    """``backend`` with every evaluated row also appended to the results table at ``path``."""

    name: ClassVar[str] = "recording"

    def __init__(self, backend: Backend, path: str | os.PathLike) -> None:
        self.backend = backend
        self.path = Path(path)
        self.store = ResultsStore(self.path)
        self.space = backend.space
        self.max_epochs = backend.max_epochs

    def evaluate(
        self, cells: CellBatch | Sequence[Cell | str], epochs: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """The wrapped backend's frame for these arguments, after appending it to the table."""
        frame = self.backend.evaluate(cells, epochs=epochs, seed=seed)
        self.store.append(frame)
        return frame

    def _evaluate(self, cells: CellBatch, epochs: int, seed: int) -> dict[str, np.ndarray]:
        """The wrapped backend's measurement (unrecorded: recording happens in :meth:`evaluate`)."""
        return self.backend._evaluate(cells, epochs, seed)

    def options(self) -> dict[str, Any]:
        """The wrapped backend's settings."""
        return self.backend.options()

    def __getattr__(self, name: str) -> Any:
        """The wrapped backend's other attributes (``expected_tau_to_full`` ...): the wrapper is
        transparent. Only called when normal lookup fails."""
        if name == "backend":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.backend, name)


def record(backend: Backend, path: str | os.PathLike) -> RecordingBackend:
    """``backend`` wrapped so that every evaluation is also appended to the table at ``path``."""
    return RecordingBackend(backend, path)
