"""Record and replay: keep every evaluation of a backend as a results table.

``backends.record(backend, path)`` wraps any backend; its frames are
returned unchanged and also appended to the table at ``path``, a folder of
parquet parts (:class:`harness.store.ResultsStore`: each evaluation is one
atomically written part, so earlier rows are never rewritten and a killed
run loses at most the evaluation in flight). ``backends.make("table",
path=path)`` serves that folder: the same cells at the same epochs and seed
get the same accuracy and training time back, so a search replayed on the
table makes the same decisions without training anything.

The recorder is also a cache: a cell already recorded with the same
backend options (the ``backend_options`` column), epochs and seed is served
from the table instead of being evaluated again, and only the other cells
reach the wrapped backend and the table. So a job rerun or resumed into the
same folder adds no rows and, with real training, measures nothing twice.
Served rows are the recorded ones, provenance included (``git_commit`` of
the run that measured them); a wrapped backend's state does not advance for
them (a table backend's ``simulated_time`` counts only what it served).
The recorder reads the table once, at its first evaluation (compacting it
first when it has many parts); rows another process appends after that are
not seen, so two processes evaluating the same cells at once both record them.

The recorded rows keep the wrapped backend's provenance (its ``backend``,
``git_commit``, ``backend_options`` ...); the table backend serves them as
``source_<column>``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from harness.evaluator import Backend
from harness.search_space import CellBatchLike
from harness.space import Cell
from harness.store import ResultsStore
from harness.validation import check_seed

#: The columns that identify an evaluation: a recorded row with the same values is served again.
CACHE_KEY: tuple[str, ...] = ("backend_options", "cell", "epochs", "seed")

# a table with this many parts is compacted when a recorder first reads it, so reading stays fast
_COMPACT_AT_PARTS = 256


class RecordingBackend(Backend):
    """``backend`` with every evaluated row also appended to the results table at ``path``,
    and rows recorded there before served instead of evaluated again (see the module docstring)."""

    name: ClassVar[str] = "recording"

    def __init__(self, backend: Backend, path: str | os.PathLike) -> None:
        self.backend = backend
        self.path = Path(path)
        self.store = ResultsStore(self.path)
        self.space = backend.space
        self.max_epochs = backend.max_epochs
        self._frames: list[pd.DataFrame] = []  # the recorded rows, as read and as appended since
        self._index: dict[tuple, tuple[int, int]] | None = None  # CACHE_KEY values -> (frame, row)

    def evaluate(
        self, cells: CellBatchLike | Sequence[Cell | str], epochs: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """The frame for these arguments: recorded rows where there are some, the wrapped
        backend's (appended to the table first) for the other cells."""
        batch = self.backend.as_batch(cells)
        epochs, seed = self.backend.check_epochs(epochs), check_seed(seed)
        options = json.dumps(self.backend.options(), sort_keys=True)
        texts = self.space.format_array(batch) if len(batch) else np.array([], dtype=object)
        index = self._recorded()
        found = [index.get((options, text, epochs, seed)) for text in texts]
        missing = [i for i, hit in enumerate(found) if hit is None]
        if len(missing) == len(batch):
            frame = self.backend.evaluate(batch, epochs=epochs, seed=seed)
            self._record(frame)
            return frame
        if missing:
            self._record(self.backend.evaluate(batch.take(missing), epochs=epochs, seed=seed))
            return self._rows([index[(options, text, epochs, seed)] for text in texts])
        return self._rows([hit for hit in found if hit is not None])

    def _recorded(self) -> dict[tuple, tuple[int, int]]:
        """The index of the recorded rows, read from the table at the first call."""
        if self._index is None:
            if len(self.store.parts()) >= _COMPACT_AT_PARTS:
                self.store.compact()
            self._index = {}
            self._add(self.store.read())
        return self._index

    def _record(self, frame: pd.DataFrame) -> None:
        self.store.append(frame)
        self._add(frame)

    def _add(self, frame: pd.DataFrame) -> None:
        """Index ``frame``'s rows (the first row of a key wins, as the table backend serves it)."""
        if frame.empty or not set(CACHE_KEY) <= set(frame.columns):
            return
        number = len(self._frames)
        self._frames.append(frame.reset_index(drop=True))
        keys = zip(*(frame[c].tolist() for c in CACHE_KEY))
        index = self._recorded()
        for row, key in enumerate(keys):
            index.setdefault(key, (number, row))

    def _rows(self, found: list[tuple[int, int]]) -> pd.DataFrame:
        """The indexed rows at ``found``, in that order, as one frame."""
        frames = np.array([f for f, _ in found])
        rows = np.array([r for _, r in found])
        pieces = []
        for number in np.unique(frames):
            at = np.flatnonzero(frames == number)
            pieces.append(self._frames[number].iloc[rows[at]].set_axis(at))
        return pd.concat(pieces).sort_index().reset_index(drop=True)

    def _evaluate(self, cells: CellBatchLike, epochs: int, seed: int) -> dict[str, np.ndarray]:
        """The wrapped backend's measurement (unrecorded: recording happens in :meth:`evaluate`)."""
        return self.backend._evaluate(cells, epochs, seed)

    def options(self) -> dict[str, Any]:
        """The wrapped backend's settings."""
        return self.backend.options()

    def __getattr__(self, name: str) -> Any:
        """The wrapped backend's other attributes (``expected_tau_to_full`` ...): the wrapper is
        transparent. Only called when normal lookup fails."""
        if name in ("backend", "_index", "_frames"):  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.backend, name)


def record(backend: Backend, path: str | os.PathLike) -> RecordingBackend:
    """``backend`` wrapped so that every evaluation is also appended to the table at ``path``
    and evaluations recorded there already are served from it."""
    return RecordingBackend(backend, path)
