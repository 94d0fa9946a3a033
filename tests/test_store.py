"""The results store and atomic writes: nothing half-written, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from harness.store import ResultsStore, atomic_write_frame, atomic_write_text


def test_append_and_read_back(tmp_path):
    store = ResultsStore(tmp_path / "evaluations")
    assert store.read().empty and len(store) == 0
    store.append(pd.DataFrame({"cell": ["a", "b"], "accuracy": [0.5, 0.6]}))
    store.append(pd.DataFrame({"cell": ["c"], "accuracy": [0.7]}))
    assert store.append(pd.DataFrame({"cell": [], "accuracy": []})) is None
    frame = store.read()
    assert frame["cell"].tolist() == ["a", "b", "c"]
    assert len(store) == 3
    # pandas reads the folder directly, as one table
    assert sorted(pd.read_parquet(tmp_path / "evaluations")["cell"]) == ["a", "b", "c"]


def test_leftover_temporary_files_are_ignored(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(pd.DataFrame({"x": [1]}))
    (tmp_path / ".part-000002.parquet.abc.tmp").write_bytes(b"garbage from a killed writer")
    assert store.read()["x"].tolist() == [1]
    assert store.append(pd.DataFrame({"x": [2]})).name == "part-000002.parquet"


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "table.csv"
    atomic_write_frame(pd.DataFrame({"x": [1]}), path)

    class Exploding:
        def to_csv(self, index=False):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_frame(Exploding(), path)
    assert pd.read_csv(path)["x"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_bad_suffix(tmp_path):
    with pytest.raises(ValueError, match="use a .parquet or .csv suffix"):
        atomic_write_frame(pd.DataFrame({"x": [1]}), tmp_path / "t.xlsx")


def test_killed_writer_leaves_complete_parts_only(tmp_path):
    """A process killed while appending in a loop leaves only whole, readable parts."""
    script = textwrap.dedent(f"""
        import pandas as pd
        from harness.store import ResultsStore
        store = ResultsStore({str(tmp_path / 'ev')!r})
        i = 0
        while True:
            store.append(pd.DataFrame({{"i": range(i, i + 1000), "v": [float(i)] * 1000}}))
            i += 1000
    """)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    store = ResultsStore(tmp_path / "ev")
    import time

    deadline = time.time() + 30
    while len(store.parts()) < 5 and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    frame = store.read()
    assert len(frame) >= 5000 and len(frame) % 1000 == 0
    assert frame["i"].tolist() == list(range(len(frame)))


def test_atomic_write_text(tmp_path):
    atomic_write_text(tmp_path / "a" / "r.md", "# hi\n")
    assert (tmp_path / "a" / "r.md").read_text() == "# hi\n"
