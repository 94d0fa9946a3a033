"""Large batches on threads (harness.parallel): the same results, bit for bit, on any number of threads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import backends
from harness import parallel
from harness.space import EMPTY


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 100 rows on 3 threads, so that a test-sized batch is split."""
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_THREAD", 100)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")


@pytest.mark.parametrize("n, threads, expected", [
    (0, 4, 1), (99, 4, 1), (250, 4, 2), (1000, 3, 3), (1000, 1, 1),
])
def test_chunk_bounds_cover_the_batch_in_order(monkeypatch, n, threads, expected):
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_THREAD", 100)
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    bounds = parallel.chunk_bounds(n)
    assert len(bounds) == expected
    assert np.array_equal(np.concatenate([np.arange(n)[s] for s in bounds]), np.arange(n))
    if expected > 1:
        assert min(s.stop - s.start for s in bounds) >= 100


@pytest.mark.parametrize("setting, threads", [("3", 3), (" 2 ", 2), ("4,2", 4)])
def test_thread_setting_follows_openmp(monkeypatch, setting, threads):
    monkeypatch.setenv("OMP_NUM_THREADS", setting)
    assert parallel.available_threads() == threads


@pytest.mark.parametrize("setting", ["two", "0", ",2"])
def test_a_bad_thread_setting_is_named(monkeypatch, setting):
    monkeypatch.setenv("OMP_NUM_THREADS", setting)
    with pytest.raises(ValueError, match=f"OMP_NUM_THREADS='{setting}' \\(environment\\)"):
        parallel.available_threads()


def test_start_gives_the_result_or_the_exception():
    assert parallel.start(lambda: 3, background=True)() == 3
    assert parallel.start(lambda: 4, background=False)() == 4
    result = parallel.start(lambda: 1 / 0, background=True)
    with pytest.raises(ZeroDivisionError):
        result()


def test_surrogate_frame_is_the_same_on_threads(small_chunks, monkeypatch):
    surrogate = backends.make("surrogate")
    cells = surrogate.space.sample(1000, None, seed=4, replace=True)
    threaded = surrogate.evaluate(cells, epochs=7, seed=3)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    serial = surrogate.evaluate(cells, epochs=7, seed=3)
    pd.testing.assert_frame_equal(threaded, serial, check_exact=True)
    assert threaded["cell"].iloc[876] == surrogate.space.format(cells[876])


def test_validation_on_threads_names_the_first_bad_cell(small_chunks):
    surrogate = backends.make("surrogate")
    cells = surrogate.space.sample(1000, 3, seed=5, replace=True)
    cells.blocks[700, 1, 3] = 8  # an operator id out of range, in the last chunk
    cells.blocks[450, 4, 0] = 0  # a value in an unused slot, in the second chunk
    with pytest.raises(ValueError, match=r"invalid padding value in block 5 of cell 450: \(0, -128"):
        surrogate.evaluate(cells)
    cells.blocks[450, 4, 0] = EMPTY
    with pytest.raises(ValueError, match="invalid operator id in block 2 of cell 700"):
        surrogate.evaluate(cells)
    cells.blocks[700, 1, 3] = 7
    cells.num_blocks[900] = 6
    with pytest.raises(ValueError, match="cell 900 has 6 blocks; allowed 0..5"):
        surrogate.evaluate(cells)
