"""Search strategies over any ``SearchSpace`` (``harness.search_space``) and any backend, resumable step by step.

``Strategy(space, backend, K=..., epochs=..., seed=..., ...).run(output_dir=None)``
returns a :class:`SearchResult` whose ``trained`` DataFrame lists every trained
cell with its ``step``, ``cell``, ``accuracy`` and ``train_time``.
"""

from harness.search.base import SearchResult, Strategy
from harness.search.baselines import RandomSearch, RegularizedEvolution, mutate
from harness.search.pareto import pareto_front, top_k
from harness.search.progressive import PNAS, POPNAS, default_time_regressor

__all__ = [
    "PNAS", "POPNAS", "RandomSearch", "RegularizedEvolution", "SearchResult", "Strategy",
    "default_time_regressor", "mutate", "pareto_front", "top_k",
]
