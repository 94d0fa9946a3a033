"""Speed of table lookups: 100k cells served from a 100k-run table (two seeds per cell)."""

from __future__ import annotations

import pytest

import backends
from backends.recording import record
from backends.table import TableBackend
from harness.space import CellBatch, CellSpace

SPACE = CellSpace.pnas()
NUM_CELLS = 50_000


@pytest.fixture(scope="module")
def cells() -> CellBatch:
    return CellBatch.concat([SPACE.sample(NUM_CELLS // 2, b, seed=b) for b in (3, 5)])


@pytest.fixture(scope="module")
def table_path(cells, tmp_path_factory):
    surrogate = backends.make("surrogate")
    path = tmp_path_factory.mktemp("table") / "runs"
    recorder = record(surrogate, path)
    for seed in (0, 1):
        recorder.evaluate(cells, seed=seed)
    return path


def test_bench_load_100k_runs(benchmark, table_path):
    backend = benchmark.pedantic(TableBackend, args=(table_path,), rounds=3, iterations=1)
    assert backend.num_rows == 2 * NUM_CELLS


@pytest.mark.parametrize("run", ["seed", "sample", "mean"])
def test_bench_lookup_100k(benchmark, table_path, cells, run):
    backend = TableBackend(table_path, run=run)
    query = CellBatch.concat([cells, cells])
    frame = benchmark(backend.evaluate, query, seed=1)
    assert len(frame) == 2 * NUM_CELLS and not frame["filled_in"].any()


def test_bench_nearest_fill_in_1k(benchmark, table_path):
    backend = TableBackend(table_path, fallback="nearest")
    query = SPACE.sample(1_000, 4, seed=99)
    frame = benchmark(backend.evaluate, query)
    assert frame["filled_in"].all()
