"""The Hydra entry point runs the main job and writes tables and a report."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd

from tests.conftest import REPO_ROOT


def run_cli(*overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "harness.app.cli", *overrides], env=env,
                          capture_output=True, text=True, timeout=300)


def test_main_job_writes_tables_and_report(tmp_path):
    out = tmp_path / "run"
    result = run_cli(f"hydra.run.dir={out}", "experiment.studies=[space_counts,surrogate_calibration]",
                     "experiment.settings.calibration_cells_per_block_count=300")
    assert result.returncode == 0, result.stderr
    counts = pd.read_csv(out / "tables" / "space_counts.csv")
    assert counts.loc[counts["quantity"] == "unique one-block cells", "value"].item() == 136
    # our table holds our values only; the paper's appear in the report
    assert "paper" not in counts.columns
    report = (out / "report.md").read_text()
    assert "## `space_counts`" in report and "| paper |" in report


def test_unknown_study_fails_clearly(tmp_path):
    result = run_cli(f"hydra.run.dir={tmp_path}", "experiment.studies=[nope]")
    assert result.returncode != 0
    assert "unknown studies ['nope']" in result.stderr
