"""Where the training backend's work runs: any ``concurrent.futures.Executor``.

The training backend submits one picklable task per cell, so anything with
the ``Executor`` interface can run them: the in-process
:class:`SerialExecutor` (the default), a local process pool from
:func:`make_executor`, or an executor the caller built (for instance a dask
``Client(...).get_executor()``).

This module imports no torch: spawned workers set ``CUDA_VISIBLE_DEVICES``
and their thread count before anything in them touches the GPU.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable, Sequence

#: Executor kinds :func:`make_executor` builds by name.
EXECUTOR_KINDS: tuple[str, ...] = ("serial", "process")


class SerialExecutor(Executor):
    """Runs each submitted call at once in the calling thread; the future is already done.

    An exception raised by the call is stored in its future, as a pool
    would, so callers handle both kinds of executor the same way.
    """

    def __init__(self) -> None:
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` now and return its finished future."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a SerialExecutor after shutdown()")
        future: Future = Future()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further submissions (nothing is ever pending)."""
        with self._lock:
            self._shutdown = True


def make_executor(
    kind: str | Executor = "serial",
    workers: int | None = None,
    threads_per_worker: int | None = None,
    gpus: Sequence[int] | None = None,
) -> Executor:
    """An executor by name, or ``kind`` itself when it already is one.

    Parameters
    ----------
    kind:
        ``"serial"`` (in-process, one call after another), ``"process"`` (a
        local ``ProcessPoolExecutor`` with the spawn start method, safe with
        CUDA and threads), or an ``Executor`` instance, returned unchanged.
    workers:
        processes of the pool; default one per GPU when ``gpus`` is given,
        else ``cpu_count // threads_per_worker``.
    threads_per_worker:
        torch intra-op threads of each worker; default ``cpu_count // workers``
        so that the pool does not oversubscribe the cores.
    gpus:
        GPU indices to spread the workers over, round-robin: each worker
        sees exactly one GPU (``CUDA_VISIBLE_DEVICES``), as ``cuda:0``.
    """
    if isinstance(kind, Executor):
        return kind
    if kind not in EXECUTOR_KINDS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {EXECUTOR_KINDS} or pass an Executor")
    for key, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{key} must be a positive integer or None, got {value!r}")
    if kind == "serial":
        return SerialExecutor()
    gpus = list(gpus) if gpus is not None else []
    cpus = os.cpu_count() or 1
    if workers is None:
        workers = len(gpus) if gpus else max(1, cpus // (threads_per_worker or 1))
    if threads_per_worker is None:
        threads_per_worker = max(1, cpus // workers)
    context = multiprocessing.get_context("spawn")
    gpu_queue = None
    if gpus:
        gpu_queue = context.Queue()
        for i in range(workers):
            gpu_queue.put(gpus[i % len(gpus)])
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=initialise_worker,
        initargs=(threads_per_worker, gpu_queue),
    )


def initialise_worker(threads: int, gpu_queue: Any | None) -> None:
    """Set up a fresh pool worker: its GPU (taken from ``gpu_queue``) and its torch thread count."""
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    import torch  # imported here so that the GPU choice above comes first

    torch.set_num_threads(threads)
