"""Turning study tables into ``tables/<id>.csv`` and a ``report.md`` with the papers' values beside ours.

Analysis is kept apart from running: these functions take finished
DataFrames and write files; they run nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.store import atomic_write_frame, atomic_write_text


@dataclass(frozen=True)
class TableSection:
    """One table of the report.

    ``ours`` is written to ``tables/<id>.csv`` as is; ``paper`` (the papers'
    numbers, from :mod:`ablations.paper_numbers`) is only joined into the
    report, on the key columns ``join_on``.
    """

    id: str
    title: str
    ours: pd.DataFrame
    paper: pd.DataFrame | None = None
    join_on: tuple[str, ...] = ()
    notes: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()


def side_by_side(section: TableSection) -> pd.DataFrame:
    """Our rows with the paper's value (and source) joined on ``join_on``, where it has one."""
    if section.paper is None or not section.join_on:
        return section.ours
    paper = section.paper.drop(columns=["source"], errors="ignore")
    return section.ours.merge(paper, on=list(section.join_on), how="left")


def write_tables(output_dir: Path, sections: list[TableSection]) -> None:
    """``tables/<id>.csv`` for each section: our values only."""
    for section in sections:
        atomic_write_frame(section.ours, output_dir / "tables" / f"{section.id}.csv")


def render_report(sections: list[TableSection], header: str) -> str:
    """The Markdown report: each table with the papers' values beside ours, settings and notes."""
    parts = [header.rstrip(), ""]
    for section in sections:
        parts += [f"## `{section.id}`: {section.title}", ""]
        if section.settings:
            settings = ", ".join(f"{k}={v}" for k, v in section.settings.items())
            parts += [f"Settings: {settings}", ""]
        sources = "" if section.paper is None else ", ".join(sorted(set(section.paper["source"])))
        if sources:
            parts += [f"Paper column: {sources}. Our values are in `tables/{section.id}.csv`.", ""]
        parts += [markdown_table(side_by_side(section)), ""]
        for figure in section.figures:
            parts += [f"![{figure}](figures/{figure})", ""]
        if section.notes:
            parts += [section.notes.strip(), ""]
    return "\n".join(parts)


def write_report(output_dir: Path, sections: list[TableSection], header: str) -> Path:
    """Write the tables and ``report.md``; returns the report's path."""
    write_tables(output_dir, sections)
    path = output_dir / "report.md"
    atomic_write_text(path, render_report(sections, header))
    return path


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub table without extra dependencies (pandas' to_markdown needs tabulate)."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if pd.isna(value):
                return ""
            return f"{value:.0f}" if value.is_integer() and abs(value) < 1e7 else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


# ---------------------------------------------------------------------------- report section
def mean_over_seeds(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """``value`` as mean and sample std over the ``seed`` column, per ``keys``."""
    return (frame.groupby(keys, sort=False)[value]
            .agg(**{value: "mean", f"{value}_std": "std", "seeds": "count"}).reset_index())


def aggregate_sources(frames: list[pd.DataFrame], keys: list[str], value: str) -> pd.DataFrame:
    """Per source: mean and std over seeds (the measured table has one run, so no std)."""
    frame = pd.concat(frames, ignore_index=True)
    return mean_over_seeds(frame, ["source", *keys], value)
