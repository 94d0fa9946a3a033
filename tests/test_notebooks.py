"""The notebooks run top to bottom on tiny surrogate settings, and are stored without outputs."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT
from tests.tiny_tables import write_tiny_table

NOTEBOOKS = REPO_ROOT / "notebooks"

XGBOOST_GRID = {"max_depth": [2], "n_estimators": [10], "learning_rate": [0.1], "min_child_weight": [1],
                "gamma": [0]}
#: Even smaller than each notebook's own TINY settings: merged into them through the environment.
SMALLER = {
    "regressor_ablation": {"searches": {"max_blocks": 2, "K": 8}, "measured_table": "none",
                           "regressors": {"max_blocks": 2, "xgboost_grid": XGBOOST_GRID}},
    "pnas_vs_popnas": {"searches": {"max_blocks": 3, "K": 8}, "measured_table": "none"},
    "fidelity_and_rastrigin": {"rastrigin": {"table4_3_repetitions": 3, "table5_4_repetitions": 3,
                                             "resolution_3d": 12, "resolution": 12}},
    # the table path is added by the test (a tiny NAS-Bench-101 table it writes)
    "own_table": {"table": {"space": "nb101"},
                  "settings": {"trials": 1, "n_boot": 20, "train_sizes": [16], "predictors": ["ridge"],
                               "xgboost_grid": XGBOOST_GRID}},
}


def test_every_notebook_is_tested_and_stored_without_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {p.stem for p in paths} == set(SMALLER)
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALLER))
def test_notebook_runs_on_tiny_settings(name, tmp_path, monkeypatch):
    """No run folder given: the notebook runs its studies into a temporary folder and plots them."""
    monkeypatch.setenv("POPNAS_RUN_DIR", "")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # CI sets Agg; the kernel must use its inline backend
    settings = SMALLER[name]
    if name == "own_table":
        path = write_tiny_table(tmp_path / "own.csv", "nb101")
        settings = {**settings, "table": {**settings["table"], "path": str(path)}}
    monkeypatch.setenv("POPNAS_NOTEBOOK_SETTINGS", json.dumps(settings))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary run folder goes here
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) >= 2  # every notebook draws at least two figures
    tables = list(tmp_path.glob("popnas-notebook-*/tables/*.csv"))
    assert tables, "the notebook did not run its studies into a temporary folder"
