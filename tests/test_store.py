"""The results store and atomic writes: nothing half-written, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from harness import store as store_module
from harness.store import CorruptTableError, ResultsStore, atomic_write_frame, atomic_write_text, read_parquet_file
from tests.conftest import REPO_ROOT


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


def test_parts_with_other_columns_read_as_pandas_concatenates_them(tmp_path):
    store = ResultsStore(tmp_path)
    frames = [pd.DataFrame({"i": [1, 2], "s": ["a", "b"]}), pd.DataFrame({"i": [3], "x": [0.5]}),
              pd.DataFrame({"i": [4.5], "s": [None]}), pd.DataFrame({"i": [5, 6], "s": ["c", "d"]})]
    for frame in frames:
        store.append(frame)
    expected = pd.concat([pd.read_parquet(p) for p in store.parts()], ignore_index=True)
    pd.testing.assert_frame_equal(store.read(), expected)
    same = ResultsStore(tmp_path / "same")
    for i in range(3):
        same.append(pd.DataFrame({"i": [i], "s": [str(i)], "b": [i > 0], "n": pd.array([i or None], "Int64")}))
    expected = pd.concat([pd.read_parquet(p) for p in same.parts()], ignore_index=True)
    pd.testing.assert_frame_equal(same.read(), expected)


def test_leftover_temporary_files_are_ignored(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(pd.DataFrame({"x": [1]}))
    (tmp_path / ".part-000002.parquet.abc.tmp").write_bytes(b"garbage from a killed writer")
    assert store.read()["x"].tolist() == [1]
    assert len(store.parts()) == 1


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
    proc = _python(script)
    store = ResultsStore(tmp_path / "ev")
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


def _python(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))


def test_parts_written_by_older_versions_are_read_first(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(pd.DataFrame({"x": [3]}))
    atomic_write_frame(pd.DataFrame({"x": [2]}), tmp_path / "part-000002.parquet")
    atomic_write_frame(pd.DataFrame({"x": [1]}), tmp_path / "part-000001.parquet")
    assert store.read()["x"].tolist() == [1, 2, 3]
    assert store.append(pd.DataFrame({"x": [4]})) == store.parts()[-1]


def test_appends_keep_their_order_when_the_clock_stalls(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module.time, "time_ns", lambda: 1_000)
    store = ResultsStore(tmp_path)
    for i in range(5):
        store.append(pd.DataFrame({"x": [i]}))
    # a second writer object starts after every part it finds, whatever its clock says
    ResultsStore(tmp_path).append(pd.DataFrame({"x": [5]}))
    assert store.read()["x"].tolist() == list(range(6))


CONCURRENT_WRITER = textwrap.dedent("""
    import sys
    import pandas as pd
    from harness.store import ResultsStore
    store = ResultsStore(sys.argv[1])
    writer = int(sys.argv[2])
    for i in range(int(sys.argv[3])):
        store.append(pd.DataFrame({"writer": [writer] * 10, "i": [i] * 10, "row": range(10)}))
""")


def test_two_concurrent_writers_lose_nothing(tmp_path):
    """Two processes appending into one folder at once: every row of both is read back, each once."""
    appends = 300
    writers = [_python(CONCURRENT_WRITER, str(tmp_path / "ev"), str(w), str(appends)) for w in (0, 1)]
    assert [w.wait() for w in writers] == [0, 0]
    frame = ResultsStore(tmp_path / "ev").read()
    assert len(frame) == 2 * appends * 10
    assert not frame.duplicated().any()
    for _writer, rows in frame.groupby("writer"):
        # each writer's rows come back in the order it appended them
        assert rows["i"].tolist() == [i for i in range(appends) for _ in range(10)]


def test_compaction_keeps_rows_order_and_types(tmp_path):
    store = ResultsStore(tmp_path)
    frames = [pd.DataFrame({"i": [i, i], "x": [0.5 * i, 1.0], "s": ["a", None], "b": [True, False]})
              for i in range(7)]
    for frame in frames:
        store.append(frame)
    before = store.read()
    merged = store.compact()
    assert store.parts() == [merged] and len(list(tmp_path.glob("*.parquet"))) == 1
    pd.testing.assert_frame_equal(store.read(), before)
    store.append(pd.DataFrame({"i": [7], "x": [3.5], "s": ["z"], "b": [True]}))
    store.compact()  # merges the merged part and the new one
    assert store.read()["i"].tolist() == [*before["i"], 7] and len(store) == 15
    assert store.compact() is None  # one part: nothing to do


@pytest.mark.parametrize("deleted_before_kill", [0, 2])
def test_compaction_killed_after_writing_loses_and_duplicates_nothing(tmp_path, monkeypatch, deleted_before_kill):
    """Killed once the merged part is in place but before (all of) the parts it replaces are deleted."""
    store = ResultsStore(tmp_path)
    for i in range(5):
        store.append(pd.DataFrame({"i": [i]}))
    deleted = []
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if len(deleted) == deleted_before_kill:
            raise KeyboardInterrupt("killed")
        deleted.append(self)
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        store.compact()
    monkeypatch.setattr(Path, "unlink", real_unlink)
    fresh = ResultsStore(tmp_path)
    assert fresh.read()["i"].tolist() == list(range(5)) and len(fresh) == 5
    assert len(fresh.parts()) == 1  # the merged part stands for the leftovers
    fresh.append(pd.DataFrame({"i": [5]}))
    fresh.compact()  # deletes the leftovers too
    assert fresh.read()["i"].tolist() == list(range(6)) and len(list(tmp_path.glob("*.parquet"))) == 1


def test_compaction_failing_before_the_rename_leaves_the_parts(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    for i in range(3):
        store.append(pd.DataFrame({"i": [i]}))

    def replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        store.compact()
    monkeypatch.undo()
    assert store.read()["i"].tolist() == [0, 1, 2] and len(store.parts()) == 3


KILLED_COMPACTOR = textwrap.dedent("""
    import sys
    import pandas as pd
    from harness.store import ResultsStore
    store = ResultsStore(sys.argv[1])
    i = 0
    while True:
        store.append(pd.DataFrame({"i": range(i, i + 10)}))
        i += 10
        if i % 50 == 0:
            store.compact()
""")


def test_process_killed_while_appending_and_compacting_loses_and_duplicates_nothing(tmp_path):
    for delay in (0.05, 0.3, 0.7):  # different moments of the append/compact cycle
        folder = tmp_path / f"ev{delay}"
        proc = _python(KILLED_COMPACTOR, str(folder))
        deadline = time.time() + 60
        while not ResultsStore(folder).parts() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        rows = ResultsStore(folder).read()
        assert len(rows) >= 10 and len(rows) % 10 == 0
        assert rows["i"].tolist() == list(range(len(rows)))


COMPACTOR = textwrap.dedent("""
    import sys, time
    from harness.store import ResultsStore
    store = ResultsStore(sys.argv[1])
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline:
        store.compact()
""")


def test_compaction_beside_concurrent_writers_loses_nothing(tmp_path):
    folder = tmp_path / "ev"
    appends = 200
    writers = [_python(CONCURRENT_WRITER, str(folder), str(w), str(appends)) for w in (0, 1)]
    compactor = _python(COMPACTOR, str(folder), "3")
    reads = []
    while any(w.poll() is None for w in writers):
        reads.append(len(ResultsStore(folder).read()))  # readers never fail or see a row twice
    assert [w.wait() for w in writers] == [0, 0] and compactor.wait() == 0
    ResultsStore(folder).compact()
    frame = ResultsStore(folder).read()
    assert len(frame) == 2 * appends * 10 and not frame.duplicated().any()
    assert all(n % 10 == 0 and n <= len(frame) for n in reads)
    for _writer, rows in frame.groupby("writer"):
        assert rows["i"].tolist() == [i for i in range(appends) for _ in range(10)]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_parquet_file_is_named(tmp_path):
    path = tmp_path / "t.parquet"
    atomic_write_frame(pd.DataFrame({"x": range(100)}), path)
    _truncate(path)
    with pytest.raises(CorruptTableError, match=r"t\.parquet is not a readable parquet file"):
        read_parquet_file(path)


def test_corrupt_part_is_reported_and_can_be_skipped(tmp_path):
    store = ResultsStore(tmp_path)
    parts = [store.append(pd.DataFrame({"i": [i] * 100})) for i in range(3)]
    _truncate(parts[1])
    with pytest.raises(CorruptTableError, match=rf"{parts[1].name}.*skip_corrupt=True"):
        store.read()
    with pytest.raises(CorruptTableError, match=parts[1].name):
        len(store)
    with pytest.raises(CorruptTableError, match=parts[1].name):
        store.compact()  # nothing is merged or deleted
    assert len(list(tmp_path.glob("*.parquet"))) == 3
    with pytest.warns(UserWarning, match=rf"skipping corrupt part.*{parts[1].name}"):
        rows = store.read(skip_corrupt=True)
    assert sorted(set(rows["i"])) == [0, 2] and len(rows) == 200
