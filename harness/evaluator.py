"""The evaluator protocol every backend implements (after NORD's evaluators, thesis 3.2.1).

One call, ``backend.evaluate(cells, epochs=None, seed=0)``, evaluates a batch
of cells and returns a DataFrame, one row per cell, whether the backend
trains networks, looks results up in a table or computes a surrogate.
"""

from __future__ import annotations

import abc
import json
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

import harness
from harness.parallel import chunk_bounds, start
from harness.provenance import git_commit
from harness.search_space import CellBatchLike, SearchSpace
from harness.space import Cell, CellSpace
from harness.validation import check_seed

#: Columns every backend's result frame has, in this order.
RESULT_COLUMNS: tuple[str, ...] = (
    "cell", "blocks", "accuracy", "train_time", "epochs", "seed", "backend",
)

#: Provenance columns appended after the backend's own columns.
PROVENANCE_COLUMNS: tuple[str, ...] = ("harness_version", "git_commit", "backend_options")


def resolve_space(space: CellSpace | str, max_blocks: int = 5, lookback: int = 2) -> CellSpace:
    """A :class:`CellSpace` from an instance or a name (``"pnas"`` or ``"popnas"``)."""
    if isinstance(space, CellSpace):
        return space
    factories = {"pnas": CellSpace.pnas, "popnas": CellSpace.popnas}
    if space not in factories:
        raise ValueError(f"unknown space {space!r}; choose one of {sorted(factories)}")
    return factories[space](max_blocks=max_blocks, lookback=lookback)


class Backend(abc.ABC):
    """An evaluator of cells.

    Subclasses set :attr:`name`, :attr:`space` and :attr:`max_epochs`, and
    implement :meth:`_evaluate`, which returns the measured columns as
    arrays aligned with the batch; :meth:`evaluate` adds the identifying and
    provenance columns.
    """

    #: Registry name, the one ``backends.make`` takes.
    name: ClassVar[str]
    #: The space whose cells this backend evaluates.
    space: SearchSpace
    #: Full-fidelity number of epochs, used when ``evaluate`` gets ``epochs=None``.
    max_epochs: int

    @abc.abstractmethod
    def _evaluate(self, cells: CellBatchLike, epochs: int, seed: int) -> dict[str, np.ndarray]:
        """``accuracy`` and ``train_time`` (seconds) per cell, plus any extra columns."""

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """The backend's settings, JSON-serialisable, recorded with every row."""

    def evaluate(
        self, cells: CellBatchLike | Sequence[Cell | str], epochs: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """Evaluate ``cells`` for ``epochs`` (default: full fidelity) with ``seed``.

        Returns one row per cell with :data:`RESULT_COLUMNS`, the backend's
        extra columns, and :data:`PROVENANCE_COLUMNS`.
        """
        batch = self.as_batch(cells)
        epochs = self.check_epochs(epochs)
        seed = check_seed(seed)
        # the text column depends on the cells alone: a large batch builds it on a thread of its own
        # while the backend measures (harness.parallel)
        texts = start(lambda: self.cell_texts(batch), background=len(chunk_bounds(len(batch))) > 1)
        measured = self._evaluate(batch, epochs, seed)
        return self.result_frame(batch, measured, epochs, seed, texts())

    def cell_texts(self, cells: CellBatchLike) -> Any:
        """The ``cell`` column: every cell's canonical text, as an array pandas reads as text."""
        if isinstance(self.space, CellSpace):  # built without a Python string per cell
            return self.space.format_column(cells)
        return self.space.format_array(cells) if len(cells) else np.array([], dtype=object)

    def as_batch(self, cells: CellBatchLike | Sequence[Cell | str]) -> CellBatchLike:
        """``cells`` as a validated batch of this backend's space."""
        if isinstance(cells, CellBatchLike):
            self.space.validate(cells, where=f"cells given to the {self.name} backend")
            return cells
        return self.space.batch(list(cells))

    def check_epochs(self, epochs: int | None) -> int:
        """``epochs`` checked against ``1..max_epochs``; ``None`` means ``max_epochs``."""
        if epochs is None:
            return self.max_epochs
        if not isinstance(epochs, (int, np.integer)) or not 1 <= epochs <= self.max_epochs:
            raise ValueError(
                f"epochs={epochs!r} is outside 1..{self.max_epochs} for the {self.name} backend"
            )
        return int(epochs)

    def result_frame(
        self, cells: CellBatchLike, measured: dict[str, np.ndarray], epochs: int, seed: int,
        texts: Any = None,
    ) -> pd.DataFrame:
        """The protocol's DataFrame from measured columns (shared by all backends); ``texts``, the
        :meth:`cell_texts` of ``cells`` when the caller has built them already."""
        n = len(cells)
        columns: dict[str, Any] = {
            "cell": self.cell_texts(cells) if texts is None else texts,
            "blocks": cells.num_blocks.astype(np.int64),
            "accuracy": np.asarray(measured["accuracy"], dtype=np.float64),
            "train_time": np.asarray(measured["train_time"], dtype=np.float64),
            "epochs": np.full(n, epochs, np.int64),
            "seed": np.full(n, seed, np.int64),
            "backend": _constant_text(self.name, n),
        }
        for key, value in measured.items():
            if key not in columns:
                columns[key] = value
        columns["harness_version"] = _constant_text(harness.__version__, n)
        columns["git_commit"] = _constant_text(git_commit() or "unknown", n)
        columns["backend_options"] = _constant_text(json.dumps(self.options(), sort_keys=True), n)
        return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _constant_text(value: str, n: int) -> pd.Categorical:
    """``n`` copies of ``value`` as a one-category categorical: a text column (in pandas and, dictionary-
    encoded, in parquet) that costs a byte a row, where a broadcast string costs a copy of it per row
    (the options' JSON is hundreds of bytes)."""
    return pd.Categorical.from_codes(np.zeros(n, np.int8), categories=pd.Index([value], dtype="str"))
