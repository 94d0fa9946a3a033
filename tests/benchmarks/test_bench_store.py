"""Speed of the results store: 10,000 appends of 10 rows, and loading what they leave, before and
after compaction (issue 9: appends must not slow down as the store grows, a long run must load fast)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from harness.store import ResultsStore

APPENDS, ROWS = 10_000, 10


def _rows(i: int) -> pd.DataFrame:
    """Ten rows shaped like recorded evaluations (cell text, numbers, provenance text)."""
    return pd.DataFrame({
        "cell": [f"(-1,sep3x3,-2,identity)({j},maxpool3x3,-1,sep5x5)" for j in range(ROWS)],
        "blocks": np.full(ROWS, 2, np.int64), "accuracy": np.linspace(0.1, 0.9, ROWS) + i * 1e-6,
        "train_time": np.full(ROWS, 12.5), "epochs": np.full(ROWS, 20, np.int64),
        "seed": np.full(ROWS, i, np.int64), "backend": "surrogate", "backend_options": '{"tau": 0.8}',
    })


@pytest.fixture(scope="module")
def appended(tmp_path_factory) -> tuple[ResultsStore, list[float]]:
    """A store after 10,000 appends, and the seconds of each append."""
    store = ResultsStore(tmp_path_factory.mktemp("store") / "ev")
    frames = [_rows(i) for i in range(APPENDS)]
    seconds = []
    for frame in frames:
        start = time.perf_counter()
        store.append(frame)
        seconds.append(time.perf_counter() - start)
    return store, seconds


def test_bench_10k_appends(benchmark, appended):
    """The appends' times (measured while building the store): the last thousand as fast as the first."""
    store, seconds = appended
    first, last = np.median(seconds[:1000]), np.median(seconds[-1000:])
    benchmark.extra_info.update(total_s=float(np.sum(seconds)), median_first_1000_ms=1e3 * first,
                                median_last_1000_ms=1e3 * last)
    benchmark.pedantic(store.append, args=(_rows(APPENDS),), rounds=20, iterations=1)
    assert len(store.parts()) == APPENDS + 20
    assert last < 3 * first  # O(1): no folder listing per append


def test_bench_load_10k_parts(benchmark, appended):
    store, _ = appended
    frame = benchmark.pedantic(store.read, rounds=1, iterations=1)
    assert len(frame) == len(store)


def test_bench_compact_then_load(benchmark, appended):
    store, _ = appended
    rows = len(store)
    start = time.perf_counter()
    store.compact()
    benchmark.extra_info["compact_s"] = time.perf_counter() - start
    frame = benchmark.pedantic(store.read, rounds=5, iterations=1)
    assert len(store.parts()) == 1 and len(frame) == rows
