"""Interchangeable evaluators behind one protocol: ``backends.make(name, **options)``.

Every backend's ``evaluate(cells, epochs=None, seed=0)`` returns a pandas
DataFrame with one row per cell (see :mod:`harness.evaluator`). Backends are
looked up by name and imported lazily, so the surrogate needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.evaluator import PROVENANCE_COLUMNS, RESULT_COLUMNS, Backend

#: Backend name -> "module:class"; imported on first use.
REGISTRY: dict[str, str] = {
    "surrogate": "backends.surrogate:SurrogateBackend",
    "training": "backends.training:TrainingBackend",
    "table": "backends.table:TableBackend",
    "nb201": "backends.nb201:NB201Backend",
}


def make(name: str, **options: Any) -> Backend:
    """The backend registered as ``name``, built with ``options``."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def record(backend: Backend, path) -> Backend:
    """``backend`` wrapped so that every evaluation is also appended to the table at ``path``.

    ``make("table", path=path)`` then serves (replays) what was recorded;
    see :mod:`backends.recording`.
    """
    from backends.recording import record as _record

    return _record(backend, path)


__all__ = ["Backend", "PROVENANCE_COLUMNS", "REGISTRY", "RESULT_COLUMNS", "make", "record"]
