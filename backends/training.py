"""The training backend: build each cell's child CNN, train it, report validation accuracy and time.

``backends.make("training", ...)`` trains real networks (PyTorch) the way
PNAS section 5.1 and POPNAS section 4.1 train their children: ``N`` cells
per stage, ``F`` filters, SGD with momentum, learning rate 0.01 with cosine
decay, 20 epochs by default; the network itself is described in
:mod:`backends.network`, the data in :mod:`backends.datasets`.

Per cell (:func:`train_cell`, the unit of work submitted to the executor)
    1. The data are loaded once per process and kept in memory (on the GPU
       when training there), so loading never counts as training time.
    2. The torch seed is derived from ``(seed, cell text)`` by SHA-256, so a
       cell's result does not depend on which other cells share its batch
       or on the worker that trains it.
    3. One untimed forward/backward/step on a *copy* of the initialised
       network warms up kernels and allocators; the copy is discarded, so
       the warm-up does not change the result.
    4. ``epochs`` epochs are timed on two clocks (see *Clocks* below).
       Each epoch visits the
       training set in a seeded random order, in ``ceil(n / batch_size)``
       near-equal batches (no ragged one-image batch for BatchNorm); the
       epochs' orders are drawn before the clock starts, and gathering a
       batch from the resident tensors is part of each timed step. The
       learning rate follows a cosine from ``lr`` to 0 over all steps.
    5. With ``precise_bn`` (default) the BatchNorm statistics are
       recomputed on the training set with the final weights (one untimed
       forward pass, :func:`_precise_batchnorm`): after the few dozen steps
       of a short digits run the running averages are stale, and without
       it 2 epochs evaluate at chance (0.10) although the network learned.
    6. The accuracy and mean cross-entropy on the validation split, in
       evaluation mode (BatchNorm running statistics), are not timed.

Clocks
    Every cell reports ``wall_time`` (``time.perf_counter`` around the
    epochs, after ``torch.cuda.synchronize()`` on CUDA) and ``cpu_time``
    (CPU seconds of the training loop), and ``train_time`` is the one the
    ``clock`` option chooses (recorded per row in ``clock``):

    * ``"cpu"``: ``cpu_time``. With one torch intra-op thread the loop runs
      in the calling thread and ``cpu_time`` is ``time.thread_time``, the
      CPU the cell itself consumed. With several threads it is the worker
      process's CPU time (``time.process_time``), summed over all of its
      threads: the total work, typically *more* than the wall time, and it
      includes any other thread the process runs meanwhile.
    * ``"wall"``: ``wall_time``, what a user waits for; on a shared machine
      it also counts whatever else the machine does.
    * ``"auto"`` (default): ``"cpu"`` on CPU with one intra-op thread per
      worker, ``"wall"`` on CUDA (the GPU's work is not host CPU time) and on
      CPU with several threads (summed CPU time is not a duration).

    Why the CPU clock on a shared CPU machine: the same 3-block cell (F=8,
    N=1, digits, 5 epochs, one thread), trained three times alone and three
    times with two trainings competing for 2 cores, took 6.7-7.8 s of wall
    time alone and 10.4-13.3 s under contention (1.5-2x), but 6.4-7.6 s of
    thread CPU time in both cases (issue 11). On CPU a single-threaded
    training's CPU time is what the cell costs; the wall clock adds the load.
    It does not remove all of it: in the embedded measured table (recorded
    at a load average of 5-12 on 2 cores) the 140 cells both searches
    trained differ by a median 7 % on the CPU clock (Kendall tau 0.88
    between the two runs) against 12 % (tau 0.79) on the wall clock, and the
    CPU clock's step-to-step drift stayed within 0.85-1.05 (wall: 0.32-1.37).

Devices and numerics
    On CPU training runs in fp32 with ``torch.use_deterministic_algorithms``
    (restored afterwards), so the same seed gives identical results. On
    CUDA the data live on the GPU, the network uses channels-last memory,
    and the forward pass runs under ``torch.autocast`` in bf16 (or fp16
    with a ``GradScaler`` where bf16 is missing); cuDNN autotuning is on,
    which trades bitwise repeatability for speed unless
    ``deterministic=True``.

Choices the papers leave open
    Weight decay 3e-4 (DARTS's child setting); no data augmentation, no
    drop-path, no auxiliary head (search-time children); training time
    covers the epochs only, not building the network or validating.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import hashlib
import math
import re
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backends.datasets import Dataset, DatasetSpec
from backends.executors import EXECUTOR_KINDS, make_executor
from backends.network import NetworkConfig, build_network, count_parameters
from harness.evaluator import Backend, resolve_space
from harness.space import CellBatch, CellSpace
from harness.validation import check_integer, check_positive

#: Optimisers by name.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")

#: Numeric precisions by name; ``"auto"`` is fp32 on CPU and bf16 (else fp16) on CUDA.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")

#: Clocks ``train_time`` can follow (see the module docstring).
CLOCKS: tuple[str, ...] = ("auto", "wall", "cpu")

#: Validation batch size (evaluation mode, so it does not change the result).
EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a worker needs to train a cell; plain, picklable data.

    ``device`` and ``precision`` are resolved (``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``; ``"fp32"``, ``"bf16"`` or ``"fp16"``) before the settings
    reach a worker. ``threads`` (torch intra-op threads while training;
    ``None`` leaves the process's setting) keeps the result independent of
    where the task runs, since CPU kernels may split their sums by thread.
    ``clock`` is one of :data:`CLOCKS`; ``"auto"`` is resolved in the worker,
    where the thread count is known (:func:`resolve_clock`).
    """

    max_blocks: int
    lookback: int
    network: NetworkConfig
    dataset: DatasetSpec
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 3e-4
    batch_size: int = 128
    device: str = "cpu"
    precision: str = "fp32"
    deterministic: bool = True
    threads: int | None = None
    clock: str = "auto"
    precise_bn: bool = True


@dataclass(frozen=True)
class TrainingResult:
    """What training one cell measured; ``train_time`` is ``wall_time`` or ``cpu_time`` as ``clock`` says."""

    accuracy: float
    val_loss: float
    train_time: float
    wall_time: float
    cpu_time: float
    clock: str
    params: int
    device: str


def cell_seed(seed: int, cell_text: str) -> int:
    """The torch seed of ``cell_text`` under run seed ``seed``: stable across processes and batches."""
    digest = hashlib.sha256(f"{seed}/{cell_text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits, valid for every torch generator


def train_cell(cell_text: str, settings: TrainingSettings, epochs: int, seed: int) -> TrainingResult:
    """Train the child network of ``cell_text`` for ``epochs`` and measure it (the executor's task).

    A top-level function of plain arguments, so it pickles to any executor.
    """
    cell = CellSpace(max_blocks=settings.max_blocks, lookback=settings.lookback).parse(cell_text)
    device = torch.device(settings.device)
    data = _device_data(settings.dataset, settings.device)
    torch_seed = cell_seed(seed, cell_text)
    with _numerics(settings):
        torch.manual_seed(torch_seed)
        model = build_network(cell, settings.network, data.in_channels, data.num_classes).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        order = torch.Generator().manual_seed(torch_seed)
        epoch_batches = [
            _batches(len(data.y_train), settings.batch_size, order, device) for _ in range(epochs)
        ]
        _warm_up(copy.deepcopy(model), data, epoch_batches[0][0], settings)
        clock = resolve_clock(settings.clock, settings.device, torch.get_num_threads())
        wall_time, cpu_time = _train(model, data, epoch_batches, settings)
        if settings.precise_bn:
            _precise_batchnorm(model, data, settings)
        accuracy, val_loss = _validate(model, data, settings)
    return TrainingResult(
        accuracy=accuracy,
        val_loss=val_loss,
        train_time=cpu_time if clock == "cpu" else wall_time,
        wall_time=wall_time,
        cpu_time=cpu_time,
        clock=clock,
        params=count_parameters(model),
        device=str(device),
    )


# ---------------------------------------------------------------------------- training steps
@dataclass(frozen=True, eq=False)
class _DeviceData:
    """A dataset's tensors on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    in_channels: int
    num_classes: int


@functools.lru_cache(maxsize=2)
def _loaded(spec: DatasetSpec) -> Dataset:
    """``spec.load()``, once per process (the backend checks the data; the tasks reuse them)."""
    return spec.load()


@functools.lru_cache(maxsize=2)
def _device_data(spec: DatasetSpec, device: str) -> _DeviceData:
    """The dataset of ``spec`` on ``device``, loaded once per process."""
    dataset = _loaded(spec)
    memory_format = torch.channels_last if torch.device(device).type == "cuda" else torch.contiguous_format

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(x, device=device).contiguous(memory_format=memory_format)

    return _DeviceData(
        x_train=images(dataset.x_train),
        y_train=torch.tensor(dataset.y_train, device=device),
        x_val=images(dataset.x_val),
        y_val=torch.tensor(dataset.y_val, device=device),
        in_channels=dataset.in_channels,
        num_classes=dataset.num_classes,
    )


def _batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """One epoch's index batches on ``device``: a seeded permutation cut into ``ceil(n / batch_size)``
    near-equal parts."""
    order = torch.randperm(n, generator=generator).to(device)
    return torch.tensor_split(order, math.ceil(n / batch_size))


@contextlib.contextmanager
def _numerics(settings: TrainingSettings) -> Iterator[None]:
    """Thread count and deterministic kernels as the settings ask, the caller's restored afterwards."""
    previous = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(settings.deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = settings.deterministic
    torch.backends.cudnn.benchmark = not settings.deterministic
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1], warn_only=previous[2])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[3], previous[4]


def _autocast(settings: TrainingSettings) -> contextlib.AbstractContextManager:
    """Mixed precision for forward passes (bf16 or fp16), or nothing in fp32."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(settings.device).type, dtype=dtype)


class _Stepper:
    """One optimisation step of a model: autocast, loss, backward, (scaled) optimiser step."""

    def __init__(self, model: nn.Module, settings: TrainingSettings) -> None:
        self.model = model
        self.settings = settings
        params = model.parameters()
        if settings.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
            )
        else:
            self.optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
        # fp16 gradients underflow without loss scaling; bf16 and fp32 need none
        self.scaler = torch.amp.GradScaler(
            torch.device(settings.device).type, enabled=settings.precision == "fp16"
        )

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        """Train on one batch with learning rate ``lr``."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.settings):
            loss = F.cross_entropy(self.model(x), y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def _synchronise(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _warm_up(model: nn.Module, data: _DeviceData, batch: torch.Tensor, settings: TrainingSettings) -> None:
    """One untimed step on a throw-away copy: first-call costs stay out of the timed epochs."""
    model.train()
    _Stepper(model, settings).step(data.x_train[batch], data.y_train[batch], settings.lr)
    _synchronise(settings.device)


def _train(
    model: nn.Module, data: _DeviceData, epoch_batches: list[tuple[torch.Tensor, ...]],
    settings: TrainingSettings,
) -> tuple[float, float]:
    """Train over the given batches; the wall-clock and CPU seconds it took (module docstring)."""
    stepper = _Stepper(model, settings)
    total_steps = sum(len(batches) for batches in epoch_batches)
    # one intra-op thread computes in this thread: its own CPU time excludes other threads
    cpu_clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
    model.train()
    _synchronise(settings.device)
    start, cpu_start = time.perf_counter(), cpu_clock()
    step = 0
    for batches in epoch_batches:
        for batch in batches:
            lr = settings.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
            stepper.step(data.x_train[batch], data.y_train[batch], lr)
            step += 1
    _synchronise(settings.device)
    return time.perf_counter() - start, cpu_clock() - cpu_start


@torch.no_grad()
def _precise_batchnorm(model: nn.Module, data: _DeviceData, settings: TrainingSettings) -> None:
    """Recompute every BatchNorm's running statistics on the training set with the final weights.

    The running averages (momentum 0.1) mix statistics of many earlier
    weights; after a few dozen steps they are stale, and evaluation-mode
    accuracy drops to chance although the network has learned (digits,
    F=8, N=1, 2 epochs = 24 steps: 0.10 in evaluation mode, 0.76 with batch
    statistics). PreciseBN (Wu & Johnson, "Rethinking 'Batch' in
    BatchNorm", 2021) replaces them by the exact average over one pass
    of training batches; with long training it changes little.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    with _autocast(settings):
        for start in range(0, len(data.y_train), settings.batch_size):
            model(data.x_train[start: start + settings.batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.no_grad()
def _validate(model: nn.Module, data: _DeviceData, settings: TrainingSettings) -> tuple[float, float]:
    """Validation accuracy and mean cross-entropy, in evaluation mode."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=data.y_val.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.y_val.device)
    with _autocast(settings):
        for start in range(0, len(data.y_val), EVAL_BATCH_SIZE):
            x = data.x_val[start: start + EVAL_BATCH_SIZE]
            y = data.y_val[start: start + EVAL_BATCH_SIZE]
            logits = model(x).float()
            correct += (logits.argmax(dim=1) == y).sum()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
    n = len(data.y_val)
    return correct.item() / n, loss_sum.item() / n


# ---------------------------------------------------------------------------- option checks
def resolve_device(device: str) -> str:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` checked against this machine."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if isinstance(device, str) and re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asks for CUDA, but torch sees no GPU on this machine")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has {torch.cuda.device_count()} GPU(s)"
            )
        return device
    raise ValueError(f"unknown device {device!r}; choose 'auto', 'cpu', 'cuda' or 'cuda:N'")


def resolve_precision(precision: str, device: str) -> str:
    """The numeric precision for ``device``: ``"auto"`` is fp32 on CPU, bf16 (else fp16) on CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    on_cuda = torch.device(device).type == "cuda"
    if precision == "auto":
        if not on_cuda:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if not on_cuda and precision != "fp32":
        raise ValueError(f"precision={precision!r} needs CUDA; training on {device!r} runs in fp32")
    return precision


def resolve_clock(clock: str, device: str, threads: int) -> str:
    """The clock ``train_time`` follows: ``clock`` itself, or for ``"auto"`` ``"cpu"`` on CPU with one
    intra-op thread and ``"wall"`` otherwise (module docstring, *Clocks*)."""
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; choose one of {CLOCKS}")
    if clock != "auto":
        return clock
    return "cpu" if torch.device(device).type == "cpu" and threads == 1 else "wall"


# ---------------------------------------------------------------------------- backend
class TrainingBackend(Backend):
    """Trains each cell's child CNN with PyTorch and reports its validation accuracy and time.

    Parameters
    ----------
    space, max_blocks, lookback:
        the cell space (a :class:`CellSpace` or ``"pnas"``/``"popnas"``);
        its combiner is the network's.
    dataset, data_dir, batches, train_size, val_size, split_seed:
        the data (see :class:`backends.datasets.DatasetSpec`); ``"digits"``
        needs no files, ``"cifar10"`` and ``"fashion_mnist"`` read ``data_dir``.
    filters, cells_per_stage:
        ``F`` and ``N`` (PNAS: 24 and 2).
    reduction:
        ``"pnas"`` or ``"popnas"``; default: the space's own (``"popnas"``
        for the POPNAS space, ``"pnas"`` otherwise).
    max_epochs:
        full fidelity (PNAS: 20).
    optimizer, lr, momentum, weight_decay, batch_size:
        ``"sgd"`` (with ``momentum``) or ``"adam"``; the initial learning
        rate, decayed to 0 along a cosine over all steps.
    precise_bn:
        recompute BatchNorm statistics before validation (step 5 above;
        ``False`` reproduces tables recorded before it existed).
    clock:
        what ``train_time`` measures: ``"auto"`` (CPU time on CPU with one
        thread per worker, wall time otherwise), ``"wall"`` or ``"cpu"``; every
        row also carries ``wall_time``, ``cpu_time`` and the resolved ``clock``
        (module docstring, *Clocks*, for what they mean and why).
    device, precision, deterministic:
        ``"auto"`` picks CUDA when present; ``precision`` ``"auto"`` is fp32
        on CPU and bf16/fp16 on CUDA; ``deterministic`` (default: on CPU
        only) enables torch's deterministic algorithms.
    executor, workers, threads_per_worker:
        ``"serial"``, ``"process"`` (a spawned local pool: one worker per
        GPU on CUDA, ``workers`` CPU processes otherwise) or a
        ``concurrent.futures.Executor`` instance, which the backend uses but
        never shuts down. ``threads_per_worker`` sets torch's threads for
        every task, whatever the executor (``None``: the process's default;
        a local CPU pool then divides the cores among its workers).
    """

    name: ClassVar[str] = "training"

    def __init__(
        self,
        space: CellSpace | str = "pnas",
        max_blocks: int = 5,
        lookback: int = 2,
        dataset: str = "digits",
        data_dir: str | None = None,
        batches: tuple[str, ...] | None = None,
        train_size: int | None = None,
        val_size: int | None = None,
        split_seed: int = 0,
        filters: int = 24,
        cells_per_stage: int = 2,
        reduction: Literal["pnas", "popnas"] | None = None,
        max_epochs: int = 20,
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        batch_size: int = 128,
        device: str = "auto",
        precision: str = "auto",
        deterministic: bool | None = None,
        executor: str | Executor = "serial",
        workers: int | None = None,
        threads_per_worker: int | None = None,
        clock: str = "auto",
        precise_bn: bool = True,
    ) -> None:
        self.space = resolve_space(space, max_blocks, lookback)
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock {clock!r}; choose one of {CLOCKS}")
        check_integer("max_epochs", max_epochs)
        check_integer("batch_size", batch_size)
        check_positive("lr", lr)
        if threads_per_worker is not None:
            check_integer("threads_per_worker", threads_per_worker)
        if workers is not None:
            check_integer("workers", workers)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if not isinstance(executor, Executor) and executor not in EXECUTOR_KINDS:
            raise ValueError(
                f"unknown executor {executor!r}; choose one of {EXECUTOR_KINDS} or pass an Executor"
            )
        self.max_epochs = int(max_epochs)
        resolved_device = resolve_device(device)
        network = NetworkConfig(
            combiner=self.space.combiner,
            reduction=reduction if reduction is not None else (
                "popnas" if self.space.name == "popnas" else "pnas"
            ),
            filters=filters,
            cells_per_stage=cells_per_stage,
        )
        spec = DatasetSpec(dataset, data_dir, batches, train_size, val_size, split_seed)
        _loaded(spec)  # bad paths and malformed files fail here, not inside a worker
        self.settings = TrainingSettings(
            max_blocks=self.space.max_blocks,
            lookback=self.space.lookback,
            network=network,
            dataset=spec,
            optimizer=optimizer,
            lr=float(lr),
            momentum=float(momentum),
            weight_decay=float(weight_decay),
            batch_size=int(batch_size),
            device=resolved_device,
            precision=resolve_precision(precision, resolved_device),
            deterministic=(
                torch.device(resolved_device).type == "cpu" if deterministic is None else bool(deterministic)
            ),
            threads=threads_per_worker,
            clock=clock,
            precise_bn=bool(precise_bn),
        )
        self._executor_choice = executor
        self._workers = workers
        self._threads_per_worker = threads_per_worker
        self._owned_executor: Executor | None = None

    # ------------------------------------------------------------------ executor
    def _pins_gpus(self) -> bool:
        """Whether this backend's own pool gives each worker one GPU of its own."""
        return self._executor_choice == "process" and self.settings.device.startswith("cuda")

    @property
    def executor(self) -> Executor:
        """The executor tasks go to; a pool this backend made is created on first use."""
        if isinstance(self._executor_choice, Executor):
            return self._executor_choice
        if self._owned_executor is None:
            gpus = None
            if self._pins_gpus():
                index = self.settings.device.partition(":")[2]
                gpus = [int(index)] if index else list(range(torch.cuda.device_count()))
            self._owned_executor = make_executor(
                self._executor_choice, self._workers, self._threads_per_worker, gpus
            )
        return self._owned_executor

    def close(self) -> None:
        """Shut down the pool this backend made (an executor passed in is left alone)."""
        if self._owned_executor is not None:
            self._owned_executor.shutdown(wait=True, cancel_futures=True)
            self._owned_executor = None

    def __enter__(self) -> "TrainingBackend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ protocol
    def options(self) -> dict[str, Any]:
        """Every setting, JSON-serialisable, recorded with each row."""
        s = self.settings
        executor = self._executor_choice
        return {
            "space": self.space.name, "max_blocks": s.max_blocks, "lookback": s.lookback,
            "combiner": s.network.combiner, "reduction": s.network.reduction,
            "filters": s.network.filters, "cells_per_stage": s.network.cells_per_stage,
            "dataset": s.dataset.name, "data_dir": s.dataset.data_dir,
            "batches": None if s.dataset.batches is None else list(s.dataset.batches),
            "train_size": s.dataset.train_size, "val_size": s.dataset.val_size,
            "split_seed": s.dataset.split_seed, "max_epochs": self.max_epochs,
            "optimizer": s.optimizer, "lr": s.lr, "momentum": s.momentum,
            "weight_decay": s.weight_decay, "batch_size": s.batch_size, "lr_schedule": "cosine",
            "device": s.device, "precision": s.precision, "deterministic": s.deterministic,
            "executor": executor if isinstance(executor, str) else type(executor).__name__,
            "workers": self._workers, "threads_per_worker": self._threads_per_worker,
            "clock": s.clock, "precise_bn": s.precise_bn,
        }

    def _evaluate(self, cells: CellBatch, epochs: int, seed: int) -> dict[str, np.ndarray]:
        texts = self.space.format_array(cells).tolist() if len(cells) else []
        # a pinned worker sees only its own GPU, which it calls cuda:0
        settings = dataclasses.replace(self.settings, device="cuda") if self._pins_gpus() else self.settings
        executor = self.executor
        futures: list[Future] = [executor.submit(train_cell, t, settings, epochs, seed) for t in texts]
        try:
            results: list[TrainingResult] = [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return {
            "accuracy": np.array([r.accuracy for r in results], np.float64),
            "train_time": np.array([r.train_time for r in results], np.float64),
            "wall_time": np.array([r.wall_time for r in results], np.float64),
            "cpu_time": np.array([r.cpu_time for r in results], np.float64),
            "clock": np.array([r.clock for r in results], dtype=object),
            "val_loss": np.array([r.val_loss for r in results], np.float64),
            "params": np.array([r.params for r in results], np.int64),
            "device": np.array([r.device for r in results], dtype=object),
        }
