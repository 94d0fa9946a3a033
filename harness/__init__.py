"""popnas-harness: a benchmark-and-ablation harness for PNAS and POPNAS.

The public entry points are :class:`CellSpace` (the search space),
``backends.make`` (evaluators) and the studies in ``ablations``.
"""

from harness.operators import PNAS_ORDER, POPNAS_ORDER
from harness.space import Cell, CellBatch, CellSpace

__version__ = "0.1.0"

__all__ = ["Cell", "CellBatch", "CellSpace", "PNAS_ORDER", "POPNAS_ORDER", "__version__"]
