"""Where the training backend's work runs: any ``concurrent.futures.Executor``.

The training backend submits one picklable task per cell, so anything with
the ``Executor`` interface can run them: the in-process
:class:`SerialExecutor` (the default), a local process pool from
:func:`make_executor`, or an executor the caller built (for instance a dask
``Client(...).get_executor()``).

A job's ``executor`` configuration (``conf/executor``) becomes the training
backend's executor options through :func:`open_executor`, which also builds a
submitit executor (:class:`SubmititExecutor`, one submitit job per cell) and a
dask.distributed one, and closes them when the job ends.

This module imports no torch: spawned workers set ``CUDA_VISIBLE_DEVICES``
and their thread count before anything in them touches the GPU.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import Executor, Future, InvalidStateError, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from harness.validation import check_integer

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
        check_integer(key, value, optional=True)
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
    """Set up a fresh pool worker: its GPU (taken from ``gpu_queue``) and its thread count, for torch
    and (``OMP_NUM_THREADS``) for the harness's own threaded numpy work (:mod:`harness.parallel`)."""
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch  # imported here so that the GPU choice above comes first

    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- from a job's configuration
class SubmititExecutor(Executor):
    """A ``concurrent.futures.Executor`` over a submitit executor: one submitit job per call.

    submitit's ``submit`` returns a ``Job`` (``result()``, ``done()``,
    ``cancel()``), not a ``Future``, and the training backend takes any
    ``Executor``. Here each call gets a future at once; one background
    thread hands the calls to submitit, at most ``max_running`` at a time
    (submitit's local executor starts every job immediately), checks their
    jobs every ``poll_interval`` seconds and completes the futures with the
    jobs' results or exceptions. Cancelling a future cancels its job.
    """

    def __init__(self, executor: Any, max_running: int | None = None, poll_interval: float = 1.0) -> None:
        check_integer("max_running", max_running, optional=True)
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive seconds, got {poll_interval!r}")
        self._executor = executor
        self._max_running = max_running
        self._poll_interval = poll_interval
        self._waiting: collections.deque = collections.deque()  # (future, fn, args, kwargs)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._shutdown = False
        self._cancel_running = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(*args, **kwargs)`` as a submitit job; its future completes with the job."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a SubmititExecutor after shutdown()")
            future: Future = Future()
            self._waiting.append((future, fn, args, kwargs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="submitit-executor", daemon=True)
                self._thread.start()
        self._wake.set()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; with ``cancel_futures`` cancel the unfinished ones (and their jobs);
        with ``wait`` return once every job has ended."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
                self._cancel_running = True
            thread = self._thread
        self._wake.set()
        if wait and thread is not None:
            thread.join()

    def _loop(self) -> None:
        # the running jobs belong to this thread; submitting and polling (sbatch, sacct) happen
        # outside the lock, so submit() never waits on the cluster
        running: list[tuple[Future, Any]] = []
        while True:
            self._wake.wait(self._poll_interval)
            self._wake.clear()
            with self._lock:
                if self._cancel_running:
                    for future, _ in running:
                        future.cancel()
                free = len(self._waiting) if self._max_running is None else self._max_running - len(running)
                batch = [self._waiting.popleft() for _ in range(max(0, min(free, len(self._waiting))))]
                if self._shutdown and not batch and not running and not self._waiting:
                    return
            running += [started for item in batch if (started := self._start(*item)) is not None]
            running = [(future, job) for future, job in running if not self._finished(future, job)]

    def _start(self, future: Future, fn: Callable[..., Any], args: tuple, kwargs: dict
               ) -> tuple[Future, Any] | None:
        """Submit one call; ``(future, job)``, or ``None`` when it was cancelled or failed to submit."""
        if future.cancelled():
            return None
        try:
            return future, self._executor.submit(fn, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the submission's failure is the call's
            _complete(future, exception=exc)
            return None

    @staticmethod
    def _finished(future: Future, job: Any) -> bool:
        """Complete ``future`` if its job ended (cancel the job if the future was cancelled)."""
        if future.cancelled():
            job.cancel(check=False)
            return True
        if not job.done():
            return False
        try:
            result = job.result()
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            _complete(future, exception=exc)
        else:
            _complete(future, result=result)
        return True


def _complete(future: Future, result: Any = None, exception: BaseException | None = None) -> None:
    """Finish ``future``; one cancelled meanwhile stays cancelled."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


@contextlib.contextmanager
def open_executor(executor: Mapping[str, Any] | None, output_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The training backend's executor options for an ``executor`` config; closed when the block ends.

    ``None`` (a backend without an executor group) gives no options.
    ``submitit`` keeps its logs and pickles in ``output_dir/<folder>``.
    """
    if executor is None:
        yield {}
        return
    kind = executor["kind"]
    if kind == "serial":
        yield {"executor": "serial"}
    elif kind == "process":
        yield {"executor": "process", **_given(executor, "name", "kind")}
    elif kind == "submitit":
        import submitit

        options = _given(executor, "name", "kind", "cluster", "folder", "max_running", "poll_interval")
        inner = submitit.AutoExecutor(folder=Path(output_dir) / executor["folder"],
                                      cluster=executor["cluster"])
        inner.update_parameters(**{k: v for k, v in options.items() if v != {}})
        pool = SubmititExecutor(inner, executor["max_running"], executor["poll_interval"])
        try:
            yield {"executor": pool}
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    elif kind == "dask":
        from distributed import Client, LocalCluster

        with contextlib.ExitStack() as stack:
            if executor["address"] is not None:
                client = stack.enter_context(Client(executor["address"]))
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=executor["n_workers"], threads_per_worker=executor["threads_per_worker"],
                    processes=executor["processes"], dashboard_address=None))
                client = stack.enter_context(Client(cluster))
            yield {"executor": client.get_executor()}
    else:
        raise ValueError(f"unknown executor kind {kind!r}; choose serial, process, submitit or dask")


def _given(options: Mapping[str, Any], *leave_out: str) -> dict[str, Any]:
    """``options`` without the keys ``leave_out`` and null values (null = the executor's default)."""
    return {k: v for k, v in options.items() if v is not None and k not in leave_out}
