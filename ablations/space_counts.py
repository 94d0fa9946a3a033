"""Study ``space_counts``: the PNAS section 3.1 search-space numbers, counted by the harness.

Block-structure counts come from enumerating the tables ``CellSpace`` builds,
and the candidate counts from running ``expand`` itself, so a regression in
the space code changes this table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablations import paper_numbers
from ablations.report import TableSection
from harness.space import EMPTY, CellSpace

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun


def space_counts(max_blocks: int = 5, lookback: int = 2) -> pd.DataFrame:
    """One row per quantity: ``quantity``, ``b`` and ``value`` (ours, counted)."""
    space = CellSpace.pnas(max_blocks=max_blocks, lookback=lookback)
    rows = [
        {"quantity": "|B_b| ordered block structures", "b": b,
         "value": len(space.block_structures(b, ordered=True))}
        for b in range(1, max_blocks + 1)
    ]
    rows.append({"quantity": "|B_1:B| cell structures", "b": max_blocks,
                 "value": space.num_cells(max_blocks)})
    initial = space.initial_cells()
    rows.append({"quantity": "unique one-block cells", "b": 1, "value": len(initial)})
    # all 256 ordered one-block structures as cells (120 of them duplicates once canonical)
    table = space.block_structures(1, ordered=True)
    matrix = np.full((len(table), 1 + 4 * max_blocks), EMPTY, np.int16)
    matrix[:, 0], matrix[:, 1:5] = 1, table
    ordered_one_block = space.from_matrix(matrix)
    rows.append({"quantity": "two-block candidates from all one-block structures (ordered)",
                 "b": 2, "value": len(space.expand(ordered_one_block, dedupe=False))})
    rows.append({"quantity": "unique two-block cells expanded from the unique one-block cells",
                 "b": 2, "value": len(space.expand(initial))})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- report section
# ---------------------------------------------------------------------- studies
def sections(run: PaperRun) -> list[TableSection]:
    """The ``space_counts`` study's report section (PNAS section 3.1)."""
    max_blocks = run.settings.max_blocks
    return [TableSection(
        id="space_counts", title="PNAS search-space counts (PNAS section 3.1)",
        ours=space_counts(max_blocks=max_blocks), paper=paper_numbers.space_counts(),
        join_on=("quantity", "b"), settings={"max_blocks": max_blocks, "lookback": 2},
        notes=("Counted by enumerating block tables and running `expand`. The paper rounds |B_1:5| "
               "to 5.6e14; the unique two-block count (136 x 300) is ours alone."),
    )]
