"""Search strategies over any ``SearchSpace`` (``harness.search_space``) and any backend, resumable step by step.

``Strategy(space, backend, K=..., epochs=..., seed=..., ...).run(output_dir=None)``
returns a :class:`SearchResult` whose ``trained`` DataFrame lists every trained
cell with its ``step``, ``cell``, ``accuracy`` and ``train_time``.
"""

from harness.search.base import SearchResult, Strategy
from harness.search.baselines import RandomSearch, RegularizedEvolution, mutate
from harness.search.pareto import FRONT_RULES, front_mask, layered_front, pareto_front, top_k, v1_front
from harness.search.progressive import PNAS, POPNAS, POPNAS_V1, default_time_regressor

__all__ = [
    "FRONT_RULES", "PNAS", "POPNAS", "POPNAS_V1", "RandomSearch", "RegularizedEvolution", "SearchResult",
    "Strategy", "default_time_regressor", "front_mask", "layered_front", "mutate", "pareto_front", "top_k",
    "v1_front",
]
