"""The searches PNAS is compared with: random search (PNAS Fig. 4) and regularized evolution.

Both search cells with exactly ``max_blocks`` blocks, the size PNAS ends at, or, with
``whole_space=True``, cells of every size (NAS-Bench-201's accuracy-latency front is made of
cells of every operator count, so a fair baseline there must reach the small ones too).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness.evaluator import Backend
from harness.search.base import Strategy
from harness.search.drift import DriftMonitor
from harness.search_space import SearchSpace


class _Sampling(Strategy):
    """Settings shared by the baselines: which cell sizes they draw (``whole_space``)."""

    def __init__(self, space: SearchSpace, backend: Backend, *, K: int = 256, epochs: int | None = None,
                 seed: int = 0, whole_space: bool = False, eval_chunk: int | None = None,
                 drift_monitor: DriftMonitor | None = None) -> None:
        super().__init__(space, backend, K=K, epochs=epochs, seed=seed, eval_chunk=eval_chunk,
                         drift_monitor=drift_monitor)
        if not isinstance(whole_space, bool):
            raise ValueError(f"whole_space must be True or False, got {whole_space!r}")
        self.whole_space = whole_space

    def settings(self):
        """The run's settings (``search.json``)."""
        return {**super().settings(), "whole_space": self.whole_space}

    def _sample(self, n: int, rng: np.random.Generator):
        """``n`` distinct uniform cells: of ``max_blocks`` size, or of any size with ``whole_space``."""
        size = None if self.whole_space else self.space.max_blocks
        return self.space.sample(n, size, seed=int(rng.integers(2**63)))


class RandomSearch(_Sampling):
    """Uniform random cells of ``max_blocks`` blocks (of any size with ``whole_space``), distinct
    within the run.

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
            draw = self._sample(size - len(chosen), rng)
            fresh = np.array([text not in seen for text in self.space.format_array(draw)])
            chosen = self.space.unique(self.space.concat([chosen, draw.take(fresh)]))
        return {"trained": self._train(run, step, chosen)}, None


class RegularizedEvolution(_Sampling):
    """Regularized (aging) evolution, thesis Listing 3.6 / Real et al. 2019, batched.

    Step 1 trains ``population_size`` random cells. Every later step runs
    ``K`` tournaments on the current population (each samples
    ``sample_size`` members and mutates the most accurate), trains the ``K``
    children together, appends them and drops the ``K`` oldest. With ``K=1``
    this is Listing 3.6 exactly; larger ``K`` is its batch-synchronous form,
    which lets vectorised and parallel backends evaluate children together.
    A mutation is the space's ``mutate`` (PNAS cells: one input or one
    operator of one branch of one block changes to another valid value;
    NAS-Bench-201: one edge's operator changes), so children stay valid
    cells. ``whole_space`` draws the first population from every size.
    """

    name: ClassVar[str] = "evolution"

    def __init__(self, space: SearchSpace, backend: Backend, *, K: int = 256, epochs: int | None = None,
                 seed: int = 0, population_size: int = 100, sample_size: int = 25,
                 whole_space: bool = False, eval_chunk: int | None = None,
                 drift_monitor: DriftMonitor | None = None) -> None:
        super().__init__(space, backend, K=K, epochs=epochs, seed=seed, whole_space=whole_space,
                         eval_chunk=eval_chunk, drift_monitor=drift_monitor)
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
            first = self._sample(self.population_size, rng)
            return {"trained": self._train(run, step, first)}, None
        # the population: the most recent population_size trained cells, oldest first
        population = self._history(run).iloc[-self.population_size:]
        accuracy = population["accuracy"].to_numpy()
        contenders = rng.integers(0, len(population), size=(self.K, self.sample_size))
        winners = contenders[np.arange(self.K), np.argmax(accuracy[contenders], axis=1)]
        parents = self.space.parse_many(population["cell"].to_numpy()[winners])
        children = self.space.mutate(parents, rng)
        return {"trained": self._train(run, step, children,
                                       {"parent": population["cell"].to_numpy()[winners]})}, None


def mutate(space: SearchSpace, cells, rng: np.random.Generator):
    """``space.mutate(cells, rng)``: each cell changed in one place (see the spaces' ``mutate``)."""
    return space.mutate(cells, rng)


__all__ = ["RandomSearch", "RegularizedEvolution", "mutate"]
