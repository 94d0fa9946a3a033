"""Crash-safe result tables: every write is atomic, appends never rewrite old rows.

A :class:`ResultsStore` is a folder of parquet part files, which pandas and
pyarrow read as one table (``pd.read_parquet(folder)``). Each append writes
one new part to a temporary name in the same folder and renames it into
place (``os.replace`` is atomic on POSIX), so a killed process leaves either
the whole part or none of it, and rows already written are never touched
again.

Part names
    ``part-<stamp>-<pid>-<token>.parquet``: ``stamp`` is the writer's clock in
    nanoseconds (19 digits), kept strictly increasing within a store object
    and above every part the writer found when it first appended, ``pid``
    and a random ``token`` make the name unique, so several processes can
    append to one folder at once without overwriting each other's parts and
    an append never lists the folder. Parts are read in name order, which is
    append order for one writer and time order between writers. Older
    stores' ``part-000001.parquet`` names are still read, before the others.

Compaction
    :meth:`ResultsStore.compact` merges the parts into one, so a long run's
    store reads in one file instead of thousands. The merged part
    (``part-<stamp>-c<pid>-<token>.parquet``, named after the first part it
    replaces) lists the parts it replaces in its parquet metadata, is written
    atomically and made durable, and only then are those parts deleted; a
    reader ignores parts a complete merged part replaces, so a compaction
    killed at any moment loses nothing and duplicates nothing. Parts another
    process appends meanwhile are not in the list and stay as they are;
    compactions of one folder take turns under a file lock. (A plain
    ``pd.read_parquet(folder)`` does not know about replaced parts: right
    after a killed compaction it would read their rows twice, until the next
    compaction deletes them.)

Corrupt parts
    A part that pyarrow cannot read (truncated, overwritten by something
    else) raises :class:`CorruptTableError` naming the file;
    ``read(skip_corrupt=True)`` warns, names it, and reads the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_LEGACY_PART_RE = re.compile(r"^part-(\d{6})\.parquet$")
_PART_RE = re.compile(r"^part-(\d{19})-(c?)(\d+)-([0-9a-f]{12})\.parquet$")
#: parquet metadata key of a merged part: JSON list of the part names it replaces.
_REPLACES_KEY = b"harness.replaces"
_LOCK_NAME = ".compact.lock"
# a reader that finds a part deleted under it (a concurrent compaction) lists the folder again
_READ_ATTEMPTS = 5

_T = TypeVar("_T")
_P = TypeVar("_P")  # a path type: str, PathLike or Path


class CorruptTableError(ValueError):
    """A parquet file (a table, or a part of a results store) cannot be read; the message names it."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_frame(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` to ``path`` atomically, as parquet or CSV by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        data = frame.to_parquet(index=False)
    elif suffix == ".csv":
        data = frame.to_csv(index=False).encode("utf-8")
    else:
        raise ValueError(f"cannot write a table to {path}: use a .parquet or .csv suffix")
    atomic_write_bytes(path, data)


def read_parquet_file(path: str | os.PathLike) -> pd.DataFrame:
    """``pd.read_parquet(path)``; an unreadable file raises :class:`CorruptTableError` naming it.

    A missing file still raises ``FileNotFoundError``.
    """
    return _unless_corrupt(path, pd.read_parquet)


def _unless_corrupt(path: _P, read: Callable[[_P], _T]) -> _T:
    """``read(path)``, with pyarrow's errors on a damaged file turned into :class:`CorruptTableError`."""
    try:
        return read(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (pa.ArrowException, OSError) as err:
        raise CorruptTableError(f"{path} is not a readable parquet file (truncated or corrupt?): {err}") from None


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing); other processes wait.

    ``fcntl.flock``: works between the processes of one machine, and over
    NFS through the kernel's lock emulation, so sweep jobs on cluster nodes
    that share a search wait for each other instead of running it twice.
    The lock goes with the process, so a killed holder never leaves it taken.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sort_key(name: str) -> tuple[int, str] | None:
    """Reading order of a part file name (legacy numbered parts first); ``None`` for other files."""
    if _LEGACY_PART_RE.match(name):
        return (0, name)
    match = _PART_RE.match(name)
    return (int(match.group(1)), name) if match else None


class ResultsStore:
    """An append-only table in a folder of atomically written parquet parts; see the module docstring."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"results store {self.folder} exists and is not a folder")
        self._last_stamp: int | None = None  # set at the first append
        self._replaced: dict[str, frozenset[str]] = {}  # merged part -> the parts it replaces

    # ------------------------------------------------------------------ listing
    def parts(self) -> list[Path]:
        """The live part files in reading order: temporary files and replaced parts are left out."""
        return self._scan()[0]

    def _scan(self) -> tuple[list[Path], list[Path]]:
        """(live parts in reading order, parts a merged part replaces that are still on disk)."""
        if not self.folder.is_dir():
            return [], []
        named = sorted((key, entry.name) for entry in os.scandir(self.folder)
                       if (key := _sort_key(entry.name)) is not None)
        names = [name for _, name in named]
        replaced: set[str] = set()
        for name in names:
            match = _PART_RE.match(name)
            if match and match.group(2):  # a merged part
                replaced |= self._replaces(name)
        return ([self.folder / n for n in names if n not in replaced],
                [self.folder / n for n in names if n in replaced])

    def _replaces(self, name: str) -> frozenset[str]:
        """The part names the merged part ``name`` replaces (read once: parts never change)."""
        if name not in self._replaced:
            try:
                metadata = pq.read_schema(self.folder / name).metadata or {}
            except FileNotFoundError:
                return frozenset()  # merged away by a later compaction: it replaces nothing now
            except (pa.ArrowException, OSError):
                return frozenset()  # unreadable: reported as corrupt when read
            self._replaced[name] = frozenset(json.loads(metadata.get(_REPLACES_KEY, b"[]")))
        return self._replaced[name]

    # ------------------------------------------------------------------ writing
    def _next_stamp(self) -> int:
        if self._last_stamp is None:
            # once per store object: later parts of this writer sort after every part it found
            found = [key[0] for entry in (os.scandir(self.folder) if self.folder.is_dir() else ())
                     if (key := _sort_key(entry.name)) is not None]
            self._last_stamp = max(found, default=0)
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def _new_name(self, stamp: int, merged: bool = False) -> str:
        return f"part-{stamp:019d}-{'c' if merged else ''}{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"

    def append(self, frame: pd.DataFrame) -> Path | None:
        """Add ``frame``'s rows as a new part; returns its path (``None`` for no rows)."""
        if frame.empty:
            return None
        path = self.folder / self._new_name(self._next_stamp())
        atomic_write_frame(frame.reset_index(drop=True), path)
        return path

    def compact(self) -> Path | None:
        """Merge the live parts into one; returns it (``None`` when there were fewer than two parts).

        Crash-safe and safe beside concurrent appends (see the module
        docstring); a corrupt part stops it before anything is written or
        deleted.
        """
        with locked(self.folder / _LOCK_NAME):
            parts, leftovers = self._scan()
            if len(parts) < 2:
                return None
            frame = self._read_parts(parts, skip_corrupt=False)  # under the lock no part vanishes
            key = _sort_key(parts[0].name)
            assert key is not None  # _scan lists part files only
            first = key[0]
            # a stamp equal to the first replaced part's keeps the merged rows where that part was
            path = self.folder / self._new_name(first, merged=True)
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            # the leftovers of a killed compaction are replaced too: the merged part that hid them goes
            gone = parts + leftovers
            metadata = {**(table.schema.metadata or {}), _REPLACES_KEY: json.dumps([p.name for p in gone]).encode()}
            sink = pa.BufferOutputStream()
            pq.write_table(table.replace_schema_metadata(metadata), sink)
            atomic_write_bytes(path, sink.getvalue().to_pybytes())
            _fsync_folder(self.folder)  # the merged part is durable before anything it replaces goes
            for part in gone:
                part.unlink(missing_ok=True)
            return path

    # ------------------------------------------------------------------ reading
    def read(self, skip_corrupt: bool = False) -> pd.DataFrame:
        """All rows appended so far, in reading order (an empty frame when there are none).

        A part that cannot be read raises :class:`CorruptTableError`, or with
        ``skip_corrupt`` is left out with a warning naming it.
        """
        return self._listed(lambda parts: self._read_parts(parts, skip_corrupt))

    def _listed(self, use: Callable[[list[Path]], _T]) -> _T:
        """``use(self.parts())``, listing again when a part vanishes under it (a concurrent compaction)."""
        for _ in range(_READ_ATTEMPTS):
            try:
                return use(self.parts())
            except FileNotFoundError:
                continue
        raise RuntimeError(f"parts of {self.folder} kept disappearing while being read; "
                           "is something other than a compaction deleting them?")

    def _read_parts(self, parts: list[Path], skip_corrupt: bool) -> pd.DataFrame:
        tables = []
        for part in parts:
            try:
                tables.append(_unless_corrupt(part, _read_part))
            except CorruptTableError as err:
                if not skip_corrupt:
                    raise CorruptTableError(
                        f"results store {self.folder}: {err}; ResultsStore(...).read(skip_corrupt=True) "
                        "reads the other parts") from None
                warnings.warn(f"results store {self.folder}: skipping corrupt part: {err}", stacklevel=3)
        if not tables:
            return pd.DataFrame()
        if all(t.schema.equals(tables[0].schema) for t in tables):
            # one conversion of the whole table: far faster than a DataFrame per part
            return pa.concat_tables(tables).to_pandas()
        # parts with other columns or types: pandas' rules (missing columns become NaN ...)
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)

    def __len__(self) -> int:
        return self._listed(lambda parts: sum(_unless_corrupt(p, _num_rows) for p in parts))


def _read_part(path: Path) -> pa.Table:
    # small files: one thread and no read-ahead are several times faster than pq.read_table's defaults
    with pq.ParquetFile(path, pre_buffer=False) as handle:
        return handle.read(use_threads=False)


def _num_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _fsync_folder(folder: Path) -> None:
    """Make the folder's entries (a rename into it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
