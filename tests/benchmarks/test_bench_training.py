"""Speed of training one child network for one epoch on digits, on CPU.

Each round is one :func:`backends.training.train_cell` call: build the
network, one warm-up step, one epoch over the 1,438 training digits (12
batches of 128), validation. ``extra_info["train_time_s"]`` is the timed
epoch alone, as the backend reports it. One torch thread, so the figures
do not depend on how busy the machine's other cores are.
"""

from __future__ import annotations

import time

import pytest

import backends
from backends.training import train_cell

CELLS = {
    "1-block": "(-2,sep3x3,-1,identity)",
    "5-block": (
        "(-2,sep3x3,-1,maxpool3x3)(-1,avgpool3x3,0,identity)(0,conv1x7-7x1,1,sep5x5)"
        "(-2,sep7x7,2,dilconv3x3)(1,sep3x3,3,identity)"
    ),
}
#: (F, N): the small children of the unit tests, and PNAS's search-time children.
SIZES = {"F8-N1": (8, 1), "F24-N2": (24, 2)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cell", CELLS)
def test_bench_one_epoch_digits_cpu(benchmark, cell, size):
    filters, cells_per_stage = SIZES[size]
    backend = backends.make(
        "training", filters=filters, cells_per_stage=cells_per_stage, max_epochs=1,
        device="cpu", threads_per_worker=1,
    )
    result = benchmark.pedantic(
        train_cell, args=(CELLS[cell], backend.settings, 1, 0), rounds=3, iterations=1, warmup_rounds=1
    )
    benchmark.extra_info["train_time_s"] = result.train_time
    benchmark.extra_info["params"] = result.params
    assert result.train_time > 0 and 0 <= result.accuracy <= 1


@pytest.mark.benchmark(timer=time.thread_time)
def test_bench_one_epoch_5block_cpu_clock(benchmark):
    """One epoch of the 5-block F=8 N=1 cell on the CPU clock (issue 11): the benchmark's own timer is
    the calling thread's CPU time, which is where a one-thread serial training runs, so a loaded
    machine moves the figure far less than wall time. ``extra_info`` has the epoch alone on both
    clocks, as the backend reports them."""
    backend = backends.make("training", filters=8, cells_per_stage=1, max_epochs=1, device="cpu",
                            threads_per_worker=1, clock="cpu")
    result = benchmark.pedantic(
        train_cell, args=(CELLS["5-block"], backend.settings, 1, 0), rounds=3, iterations=1, warmup_rounds=1
    )
    benchmark.extra_info.update(train_time_s=result.train_time, cpu_time_s=result.cpu_time,
                                wall_time_s=result.wall_time, clock=result.clock)
    assert result.clock == "cpu" and result.train_time == result.cpu_time > 0
