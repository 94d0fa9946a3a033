"""The searches PNAS is compared with: random search (PNAS Fig. 4) and regularized evolution.

Both search cells with exactly ``max_blocks`` blocks, the size PNAS ends at.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from backends.base import Backend
from harness.operators import NUM_OPERATORS
from harness.search.base import Strategy
from harness.space import CellBatch, CellSpace


class RandomSearch(Strategy):
    """Uniform random cells of ``max_blocks`` blocks, distinct within the run.

    Its steps train as many cells as PNAS's steps do (all unique one-block
    cells' count at step 1, ``K`` after), so the two compare model for model.
    """

    name: ClassVar[str] = "random"

    def _step(self, step, run, rng):
        history = self._history(run)
        size = len(self.space.initial_cells()) if step == 1 else self.K
        seen = set(history["cell"]) if len(history) else set()
        chosen = self.space.empty_batch()
        while len(chosen) < size:
            draw = self.space.sample(size - len(chosen), self.space.max_blocks,
                                     seed=int(rng.integers(2**63)))
            fresh = np.array([text not in seen for text in self.space.format_array(draw)])
            chosen = self.space.unique(CellBatch.concat([chosen, draw.take(fresh)]))
        return {"trained": self._train(run, step, chosen)}, None


class RegularizedEvolution(Strategy):
    """Regularized (aging) evolution, thesis Listing 3.6 / Real et al. 2019, batched.

    Step 1 trains ``population_size`` random cells. Every later step runs
    ``K`` tournaments on the current population (each samples
    ``sample_size`` members and mutates the most accurate), trains the ``K``
    children together, appends them and drops the ``K`` oldest. With ``K=1``
    this is Listing 3.6 exactly; larger ``K`` is its batch-synchronous form,
    which lets vectorised and parallel backends evaluate children together.
    A mutation changes one input or one operator of one branch of one block
    to another valid value, so children stay valid cells.
    """

    name: ClassVar[str] = "evolution"

    def __init__(self, space: CellSpace, backend: Backend, *, K: int = 256, epochs: int | None = None,
                 seed: int = 0, population_size: int = 100, sample_size: int = 25,
                 eval_chunk: int | None = None, drift_monitor: DriftMonitor | None = None) -> None:
        super().__init__(space, backend, K=K, epochs=epochs, seed=seed, eval_chunk=eval_chunk,
                         drift_monitor=drift_monitor)
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"need 1 <= sample_size <= population_size, got {sample_size} and {population_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size

    def settings(self):
        """The run's settings (``search.json``)."""
        return {**super().settings(), "population_size": self.population_size,
                "sample_size": self.sample_size}

    def _step(self, step, run, rng):
        if step == 1:
            first = self.space.sample(self.population_size, self.space.max_blocks,
                                      seed=int(rng.integers(2**63)))
            return {"trained": self._train(run, step, first)}, None
        # the population: the most recent population_size trained cells, oldest first
        population = self._history(run).iloc[-self.population_size:]
        accuracy = population["accuracy"].to_numpy()
        contenders = rng.integers(0, len(population), size=(self.K, self.sample_size))
        winners = contenders[np.arange(self.K), np.argmax(accuracy[contenders], axis=1)]
        parents = self.space.parse_many(population["cell"].to_numpy()[winners])
        children = mutate(self.space, parents, rng)
        return {"trained": self._train(run, step, children,
                                       {"parent": population["cell"].to_numpy()[winners]})}, None


def mutate(space: CellSpace, cells: CellBatch, rng: np.random.Generator) -> CellBatch:
    """Each cell with one branch's input or operator changed to another valid value (vectorised)."""
    n = len(cells)
    blocks = cells.blocks.copy()
    slot = (rng.random(n) * cells.num_blocks).astype(np.intp)
    field = rng.integers(0, 4, size=n)  # in1, op1, in2, op2
    rows = np.arange(n)
    current = blocks[rows, slot, field].astype(np.int64)
    is_input = field % 2 == 0
    # inputs of slot j range over -lookback..j-1; operators over 0..7
    low = np.where(is_input, -space.lookback, 0)
    count = np.where(is_input, space.lookback + slot, NUM_OPERATORS)
    # a uniform draw among the other count-1 values: skip over the current one
    draw = low + (rng.random(n) * (count - 1)).astype(np.int64)
    draw = np.where(draw >= current, draw + 1, draw)
    single = count < 2  # slot 0 with lookback 1 has one input only: change its operator instead
    if single.any():
        field[single] += 1
        current[single] = blocks[rows[single], slot[single], field[single]]
        other = (rng.random(single.sum()) * (NUM_OPERATORS - 1)).astype(np.int64)
        draw[single] = np.where(other >= current[single], other + 1, other)
    blocks[rows, slot, field] = draw
    matrix = space.to_matrix(CellBatch(blocks, cells.num_blocks))
    return space.from_matrix(matrix, where="mutated cells")


__all__ = ["RandomSearch", "RegularizedEvolution", "mutate"]
