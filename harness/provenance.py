"""Where a result came from: package version, git commit, library versions."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import harness


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source checkout this package runs from, or ``None`` outside git."""
    root = Path(harness.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def environment() -> dict[str, str]:
    """Versions and hardware that shape results, for run metadata."""
    import numpy
    import pandas

    info = {
        "harness_version": harness.__version__,
        "git_commit": git_commit() or "unknown",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }
    return info
