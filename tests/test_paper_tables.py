"""Regression tests of the main job's metrics: every table at small, fast settings on the surrogate,
compared with golden files in ``tests/test_paper_tables/`` (pytest-regressions).

Tolerances: counts are exact; everything computed in floating point (relative errors,
correlations, accuracies, times) must match to ``rtol=1e-6`` — the whole pipeline is
deterministic for a seed, so only last-bit differences between BLAS builds are allowed.
Regenerate deliberately with ``pytest tests/test_paper_tables.py --force-regen`` after a change
that is meant to move the numbers, and say why in the commit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.paper import run_paper
from tests.conftest import shared_dir

#: The main job at small, fast settings (about a minute on 2 cores).
SMALL_SETTINGS = {
    "seeds": [0, 1],
    "measured_table": "none.parquet",  # surrogate only: golden files must not depend on the recording
    "predictor": {"predictor": "mlp", "predictor_options": {"epochs": 20, "output_bias": None}},
    "evolution": {"population_size": 20, "sample_size": 5},
    "popnas_v1": {"predictor_options": {"epochs": 10, "output_bias": None}},
    "popnas_time_limit": {"quantiles": [0.5, 0.9], "searches": ["pnas", "popnas"], "seeds": [0], "K": 16},
    "calibration_cells_per_block_count": 200,
    "regressors": {"max_blocks": 3,
                   "xgboost_grid": {"max_depth": [2], "n_estimators": [50], "learning_rate": [0.1]}},
    "searches": {"max_blocks": 3, "K": 16},
    "pnas_table1": {"max_blocks": 3, "K": 32, "R": 200, "trials": 2, "n_boot": 50,
                    "predictor_options": {name: {"epochs": 10, "output_bias": None}
                                          for name in ("mlp", "mlp-ensemble", "lstm", "lstm-ensemble")}},
    "rastrigin": {"table4_3_repetitions": 10, "table5_4_repetitions": 5, "resolution_3d": 20,
                  "resolution": 16},
    "nb201": {"time_regressors": {"repetitions": 1, "K": 32,
                                  "xgboost_grid": {"max_depth": [2], "n_estimators": [20]}},
              "predictor_ranking": {"trials": 1, "n_boot": 50, "K": 64}},
}

TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper")
    sections = run_paper(folder, None, SMALL_SETTINGS)
    return {section.id: section.ours for section in sections}, folder


def _numeric_tolerances(frame: pd.DataFrame) -> dict:
    return {column: TOLERANCE for column in frame.columns if frame[column].dtype.kind == "f"}


TABLE_IDS = ["space_counts", "surrogate_calibration", "popnas_table3", "popnas_table4", "popnas_table5",
             "popnas_table6", "popnas_table7", "popnas_table8", "popnas_fronts", "popnas_time_limit", "pnas_table1", "pnas_fig4", "thesis_table4_3",
             "thesis_table5_4", "thesis_kendall_fidelity", "nb201_time_regressors", "nb201_predictor_ranking"]
NEEDS_SHARED = {"nb201_time_regressors", "nb201_predictor_ranking"}


@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_table_matches_golden_file(tables, table_id, dataframe_regression):
    if table_id in NEEDS_SHARED and not (shared_dir() / "data" / "nb201").is_dir():
        pytest.skip(f"NAS-Bench-201 data not found under {shared_dir()}")
    frame = tables[0][table_id].reset_index(drop=True)
    frame = frame.astype({c: str for c in frame.columns if frame[c].dtype.kind == "O"})
    dataframe_regression.check(frame, basename=table_id, tolerances=_numeric_tolerances(frame))


def test_outputs_written(tables):
    _, folder = tables
    written = {p.stem for p in (folder / "tables").glob("*.csv")}
    assert set(TABLE_IDS) - NEEDS_SHARED <= written
    assert len(list((folder / "figures").glob("*.png"))) >= 5
    report = (folder / "report.md").read_text()
    for table_id in TABLE_IDS:
        assert f"## `{table_id}`" in report
    # our CSVs hold our values only; the papers' appear in the report
    assert not any("paper" in pd.read_csv(folder / "tables" / f"{t}.csv").columns
                   for t in set(TABLE_IDS) - NEEDS_SHARED)


@pytest.fixture(scope="module")
def pnas_run():
    import backends
    from harness import CellSpace
    from harness.search import PNAS

    space = CellSpace.pnas(max_blocks=3)
    return space, PNAS(space, backends.make("surrogate", space=space), K=16, seed=0,
                       **SMALL_SETTINGS["predictor"]).run().trained


def _table3(pnas_run):
    from ablations.popnas_time_regressors import popnas_table3

    space, trained = pnas_run
    return popnas_table3(trained, space, {"param_grid": SMALL_SETTINGS["regressors"]["xgboost_grid"]})[0]


def test_table3_single_run_matches_golden_file(pnas_run, dataframe_regression):
    table = _table3(pnas_run)
    dataframe_regression.check(table, basename="popnas_table3_seed0", tolerances=_numeric_tolerances(table))


def test_changing_a_regressor_fails_the_golden_file(pnas_run, monkeypatch, dataframe_regression, request):
    """Ridge with another alpha is a regressor that behaves differently: Table 3 leaves its golden file."""
    if request.config.getoption("force_regen"):
        pytest.skip("--force-regen would overwrite the golden file with the changed table")
    from functools import partial

    from sklearn.linear_model import Ridge

    import harness.regressors as regressors

    monkeypatch.setitem(regressors.REGRESSORS, "ridge", partial(Ridge, alpha=100.0))
    table = _table3(pnas_run)
    with pytest.raises(AssertionError):
        dataframe_regression.check(table, basename="popnas_table3_seed0", tolerances=_numeric_tolerances(table))
