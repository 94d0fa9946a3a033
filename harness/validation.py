"""Checks of scalar arguments, shared by every layer, so a bad value gets the same message everywhere:
``"<name> must be a positive integer, got 0"``, with the name the caller knows the value by."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_integer(name: str, value: Any, minimum: int = 1, optional: bool = False) -> Any:
    """``value`` as an ``int`` if it is an integer (not a bool) >= ``minimum``, else a ``ValueError``
    naming ``name``; with ``optional`` a ``None`` passes through as ``None``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")
    return int(value)


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an ``int``; ``ValueError`` naming ``name`` unless it is a non-negative integer."""
    return check_integer(name, seed, minimum=0)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a finite number (not a bool) > 0, else a ``ValueError`` naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


__all__ = ["check_integer", "check_positive", "check_seed"]
