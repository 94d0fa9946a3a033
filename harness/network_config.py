"""The child CNN's hyper-parameters around a cell: what the training backend builds
(:mod:`backends.network`) and what the cost features count (:mod:`harness.cost_features`), so the core
library describes the network without importing the backend that trains it (or torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.validation import check_integer

#: Number of stages of cells (PNAS Fig. 1, CIFAR-10 network).
NUM_STAGES = 3


@dataclass(frozen=True)
class NetworkConfig:
    """The hyper-parameters of the child CNN around a cell.

    Parameters
    ----------
    combiner:
        how a block joins its two branches: ``"add"`` (PNAS) or ``"concat"`` (POPNAS).
    reduction:
        ``"pnas"`` (the cell with stride 2) or ``"popnas"`` (a stride-2 convolution).
    filters:
        ``F``, the channels of the first stage (PNAS: 24, POPNAS: 32).
    cells_per_stage:
        ``N``, the cells per stage (both papers: 2).
    """

    combiner: Literal["add", "concat"] = "add"
    reduction: Literal["pnas", "popnas"] = "pnas"
    filters: int = 24
    cells_per_stage: int = 2

    def __post_init__(self) -> None:
        if self.combiner not in ("add", "concat"):
            raise ValueError(f"combiner must be 'add' or 'concat', got {self.combiner!r}")
        if self.reduction not in ("pnas", "popnas"):
            raise ValueError(f"reduction must be 'pnas' or 'popnas', got {self.reduction!r}")
        for key in ("filters", "cells_per_stage"):
            check_integer(key, getattr(self, key))


__all__ = ["NUM_STAGES", "NetworkConfig"]
