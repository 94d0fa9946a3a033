"""The evaluator protocol under its former name: it lives in :mod:`harness.evaluator`, the core
library, so the searches depend on the protocol and not on ``backends``; this module re-exports it
for code written against ``backends.base``."""

from harness.evaluator import PROVENANCE_COLUMNS, RESULT_COLUMNS, Backend, check_seed, resolve_space

__all__ = ["Backend", "PROVENANCE_COLUMNS", "RESULT_COLUMNS", "check_seed", "resolve_space"]
