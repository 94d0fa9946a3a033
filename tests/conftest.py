"""Shared fixtures: the spaces, and where the optional ``../shared`` data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import CellSpace

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$POPNAS_SHARED`` or ``../shared`` beside the repository (may not exist)."""
    return Path(os.environ.get("POPNAS_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def pnas_space() -> CellSpace:
    """The PNAS space with B = 5."""
    return CellSpace.pnas(max_blocks=5)


@pytest.fixture(scope="session")
def popnas_space() -> CellSpace:
    """The POPNAS space with B = 5 (lookback 2, concat, cost order)."""
    return CellSpace.popnas(max_blocks=5)
