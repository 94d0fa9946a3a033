"""The eight PNAS operators and the two orders the papers index them in.

Every operator has one fixed *global id* (its position in the PNAS order).
Cells store global ids, so a cell means the same thing in every space; the
order of a space (PNAS or POPNAS) only matters to encodings, which map global
ids to the index the paper uses.
"""

from __future__ import annotations

#: PNAS section 3.1 order; the position is the global operator id used in cell arrays.
PNAS_ORDER: tuple[str, ...] = (
    "sep3x3",
    "sep5x5",
    "sep7x7",
    "conv1x7-7x1",
    "identity",
    "avgpool3x3",
    "maxpool3x3",
    "dilconv3x3",
)

#: POPNAS section 3.1.1 order: increasing measured cost; POPNAS numbers them 1..8 (0 = empty block).
POPNAS_ORDER: tuple[str, ...] = (
    "avgpool3x3",
    "maxpool3x3",
    "identity",
    "dilconv3x3",
    "sep3x3",
    "sep5x5",
    "sep7x7",
    "conv1x7-7x1",
)

OPERATOR_ID: dict[str, int] = {name: i for i, name in enumerate(PNAS_ORDER)}

NUM_OPERATORS = len(PNAS_ORDER)


def operator_id(name: str, where: str = "operator") -> int:
    """Global id of operator ``name``; a clear ``ValueError`` naming it otherwise."""
    try:
        return OPERATOR_ID[name]
    except KeyError:
        raise ValueError(
            f"unknown operator {name!r} in {where}; known operators: {', '.join(PNAS_ORDER)}"
        ) from None
