"""Crash-safe result tables: every write is atomic, appends never rewrite old rows.

A :class:`ResultsStore` is a folder of parquet part files (``part-000001.parquet``,
...), which pandas and pyarrow read as one table (``pd.read_parquet(folder)``).
Each append writes one new part to a temporary name in the same folder and
renames it into place (``os.replace`` is atomic on POSIX), so a killed
process leaves either the whole part or none of it, and rows already written
are never touched again.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

_PART_RE = re.compile(r"^part-(\d{6})\.parquet$")


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


class ResultsStore:
    """An append-only table in a folder of atomically written parquet parts."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"results store {self.folder} exists and is not a folder")

    def parts(self) -> list[Path]:
        """The complete part files, in append order (temporary files are ignored)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _PART_RE.match(p.name))

    def append(self, frame: pd.DataFrame) -> Path | None:
        """Add ``frame``'s rows as a new part; returns its path (``None`` for no rows)."""
        if frame.empty:
            return None
        parts = self.parts()
        number = int(_PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 1
        path = self.folder / f"part-{number:06d}.parquet"
        atomic_write_frame(frame.reset_index(drop=True), path)
        return path

    def read(self) -> pd.DataFrame:
        """All rows appended so far, in append order (an empty frame when there are none)."""
        parts = self.parts()
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)

    def __len__(self) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.parts())
