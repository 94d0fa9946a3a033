"""Threads for the harness's own vectorised numpy work on large batches.

Scoring a million surrogate cells and building their text column are long runs of numpy and Arrow
kernels, which release the GIL, so a batch split into contiguous chunks runs on several threads.
Only work whose every row depends on its own cell alone is split, so the result is the same, bit
for bit, however many threads there are (tests check this).

How many threads: ``OMP_NUM_THREADS`` when it is set, else every CPU this process may run on. The
variable is the convention that joblib's loky workers (Hydra's joblib launcher) and the project's
process executors follow to share the cores between workers, so a sweep job that was given one
thread uses one here too.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

#: Batches with fewer rows than this per thread stay on the calling thread: below it a thread's
#: start-up and the chunks' concatenation cost more than the split saves (a search step's 256 cells
#: never leave it).
MIN_ROWS_PER_THREAD = 65_536


def available_threads() -> int:
    """Threads the harness's numpy work may use: ``OMP_NUM_THREADS`` if set (its first level, when
    it lists one per level of nesting, as OpenMP allows: ``"4,2"``), else the usable CPUs."""
    setting = os.environ.get("OMP_NUM_THREADS", "").strip()
    if setting:
        try:
            threads = int(setting.split(",")[0])
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS={setting!r} (environment) is not an integer") from None
        if threads < 1:
            raise ValueError(f"OMP_NUM_THREADS={setting!r} (environment) must be >= 1")
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def chunk_bounds(n: int) -> list[slice]:
    """Contiguous slices covering ``0..n``: one per available thread, each at least
    :data:`MIN_ROWS_PER_THREAD` long (one slice when ``n`` is too small to split or there is one
    thread)."""
    parts = max(1, min(available_threads(), n // MIN_ROWS_PER_THREAD))
    edges = [n * k // parts for k in range(parts + 1)]
    return [slice(edges[k], edges[k + 1]) for k in range(parts)]


def map_threads(fn: Callable[[slice], T], bounds: Sequence[slice]) -> list[T]:
    """``[fn(s) for s in bounds]``, the slices on threads of their own when there are several."""
    if len(bounds) <= 1:
        return [fn(s) for s in bounds]
    with ThreadPoolExecutor(len(bounds)) as pool:
        return list(pool.map(fn, bounds))


def start(fn: Callable[[], T], *, background: bool) -> Callable[[], T]:
    """Start ``fn()`` on a thread of its own when ``background`` (the caller goes on with other
    work meanwhile), else run it now. Returns a function that gives ``fn``'s result, or raises its
    exception, once it is done."""
    if not background:
        value = fn()
        return lambda: value
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future.result
