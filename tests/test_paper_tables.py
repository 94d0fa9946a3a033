"""Regression tests of the main job's metrics: every table at small, fast settings on the surrogate
(and the packaged NAS-Bench-201 table), compared with golden files in ``tests/test_paper_tables/``
(pytest-regressions).

They must pass on any x86 machine and fail only when behaviour changes. Two things make that hold:

* Decisions do not depend on the processor. The predictors compute in float64
  (``harness.predictors.DTYPE``), give their predictions on a grid and the searches rank on grids
  (``harness.resolution.ACCURACY_RESOLUTION``/``TIME_RESOLUTION``), so the same cells are chosen and
  the same ties are ranked as ties whatever vector kernels PyTorch, MKL or OpenBLAS pick.
  ``.ci/run`` runs this file again with ``ATEN_CPU_CAPABILITY=default`` and with one thread and
  ``MKL_CBWR=COMPATIBLE``.
* Each quantity is compared with a tolerance that says why it is what it is (:data:`TOLERANCES`):
  integer columns (counts, seeds, steps, block counts) are exact; every float column of every table
  is assigned one of the classes below, and a test fails when a new float column has none.

Regenerate deliberately with ``pytest tests/test_paper_tables.py --force-regen`` after a change
that is meant to move the numbers, and say why in the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from ablations.nb201_searches import BUDGET_QUANTILES, metric_names
from harness.app.paper import run_paper

#: The main job at small, fast settings (about a minute on 2 cores).
SMALL_SETTINGS = {
    "seeds": [0, 1],
    "measured_table": "none",  # surrogate only: golden files must not depend on the recording
    "predictor": {"name": "mlp", "options": {"epochs": 20, "output_bias": None}},
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
              "predictor_ranking": {"trials": 1, "n_boot": 50, "K": 64},
              "train_sizes": {"sizes": [8, 64], "trials": 2, "n_boot": 50},
              "searches": {"seeds": 3, "K": 4, "datasets": ["cifar10"], "devices": ["lat_gold_6226", "lat_pixel3"]}},
    "fidelity_dial_nb201": {"seeds": [0, 1], "K": 4},
}

@dataclass(frozen=True)
class Tolerance:
    """``numpy.isclose`` arguments for one kind of quantity, with the reason for their size."""

    rtol: float
    atol: float
    why: str

    def args(self) -> dict[str, float]:
        return {"rtol": self.rtol, "atol": self.atol}


#: Settings echoed into a table (target tau, confidence level, ...): the same numbers on every machine.
SETTING = Tolerance(0.0, 0.0, "a setting copied into the table, not computed")

#: Accuracies, training times and their means/spreads over the cells the searches trained or the studies
#: sampled, on the surrogate (and Rastrigin top fractions, copula-measured taus, bootstrap errors of
#: them): float64 numpy arithmetic on the same cells everywhere, so only last-bit differences of libm and
#: SIMD loops remain (~1e-16 relative). 1e-9 leaves six orders of margin and still fails on any change of
#: the cells: two distinct cells differ in surrogate accuracy by ~1e-4 or more, so replacing one of 16
#: trained cells moves a mean by ~1e-5.
SURROGATE = Tolerance(1e-9, 1e-12, "float64 arithmetic on the same cells; a different cell moves it by >= 1e-5")

#: Relative errors of time regressors (POPNAS Tables 3-6, NAS-Bench-201): Ridge and NNLS solve small
#: least-squares problems through LAPACK/BLAS, whose kernels differ per CPU (~1e-12 relative here), and
#: XGBoost accumulates gradient histograms in float32 (~1e-7 relative). 1e-6 covers both; changing a
#: regressor moves its errors by orders of magnitude more (Ridge alpha 0.1 -> 100: see
#: ``test_changing_a_regressor_fails_the_golden_file``).
REGRESSOR = Tolerance(1e-6, 1e-9, "BLAS/LAPACK last bits and XGBoost's float32 histograms")

#: Rank correlations of the float64 accuracy predictors' outputs (PNAS Table 1, NAS-Bench-201 ranking) and
#: their bootstrap errors: the predictions agree to ~1e-15 across processors and PNAS's predictors give
#: them on the 1e-9 grid, so predictions tied on paper are tied on every machine (before the grid, an
#: MLP ensemble's two tied two-block cells came out 1.1e-16 apart in a machine-dependent order, which
#: moved Spearman among 200 cells by 1.8e-5). 1e-7 is far below one rank swap, so a changed model or
#: split fails.
PREDICTOR = Tolerance(1e-7, 1e-10, "ranks of float64 predictions on a 1e-9 grid")

#: Scores of the NAS-Bench-201 searches against the true front (hypervolumes, recalls, regrets, their
#: means, t-intervals and Wilcoxon statistics): the searches decide on the stated grids, so the evaluated
#: cells are the same on every machine, and the scores are float64 sums over those cells (~1e-15
#: relative); a different evaluated cell moves a run's regret by >= 0.01 points or its hypervolume by a
#: strip of the front, far above 1e-9. The same holds for the fidelity_dial on NAS-Bench-201 (the picked
#: cells' real accuracies and exact ranks; the copula noise is float64 numpy on hashed draws): another
#: picked cell moves a mean by >= 1e-5 and a rank by >= 0.5.
SEARCH_SCORES = Tolerance(1e-9, 1e-12, "float64 sums over the same evaluated table cells")

#: Tolerance class of every float column, per table (columns not listed are integers: exact).
TOLERANCES: dict[str, dict[str, Tolerance]] = {
    "space_counts": {},
    "surrogate_calibration": {
        "target_tau": SETTING, "target_time_tau": SETTING,
        **dict.fromkeys(["measured_tau", "std_error", "ci_low", "ci_high", "measured_time_tau",
                         "time_std_error", "time_ci_low", "time_ci_high"], SURROGATE)},
    **{table: dict.fromkeys(["mean_relative_error", "mean_relative_error_std"], REGRESSOR)
       for table in ("popnas_table3", "popnas_table4", "popnas_table6")},
    "popnas_table3_seed0": {"mean_relative_error": REGRESSOR},
    "popnas_table5": dict.fromkeys(["relative_error", "relative_error_std"], REGRESSOR),
    "popnas_table7": dict.fromkeys(["mean_accuracy", "mean_accuracy_std"], SURROGATE),
    "popnas_table8": dict.fromkeys(["value", "value_std"], SURROGATE),
    "popnas_fronts": dict.fromkeys(["value", "value_std"], SURROGATE),
    "popnas_time_limit": {"quantile": SETTING, **dict.fromkeys(
        ["time_limit", "cells trained", "search training time [min]", "best cell accuracy",
         "mean accuracy of the last step's cells"], SURROGATE)},
    "fidelity_dial": {"tau": SETTING, **dict.fromkeys(["mean", "std", "ci_low", "ci_high"], SURROGATE)},
    "fidelity_dial_order": {"tau": SETTING, "reference_tau": SETTING, "kendall_tau_to_reference": SURROGATE},
    "pnas_table1": dict.fromkeys(["spearman_mean", "spearman_std", "std_error", "ci_low", "ci_high"], PREDICTOR),
    "pnas_fig4": dict.fromkeys(["mean", "std"], SURROGATE),
    **{table: {"tau": SETTING, **dict.fromkeys(["mean_top_fraction", "std_top_fraction", "mean_normalised_value",
                                                 "std_normalised_value", "measured_tau"], SURROGATE)}
       for table in ("thesis_table4_3", "thesis_table5_4")},
    "thesis_kendall_fidelity": {"expected_tau": SETTING, "confidence": SETTING,
                                **dict.fromkeys(["value", "std_error", "ci_low", "ci_high"], SURROGATE)},
    "nb201_time_regressors": dict.fromkeys(["mean_relative_error", "std_over_repetitions"], REGRESSOR),
    "nb201_predictor_ranking": {"fit_blocks": SETTING, "eval_blocks": SETTING, "confidence": SETTING,
                                **dict.fromkeys(["value", "std_over_trials", "std_error", "ci_low", "ci_high"],
                                                PREDICTOR)},
    # accuracy predictors' and latency regressors' rows share the columns: the regressors' class is the looser
    "nb201_train_sizes": {"confidence": SETTING, **dict.fromkeys(["value", "std_over_trials", "ci_low", "ci_high"],
                                                                 REGRESSOR)},
    "nb201_pnas_vs_popnas": dict.fromkeys(
        ["evaluated", "search_cost", *(f"{metric}{part}" for metric in metric_names(BUDGET_QUANTILES)
                                       for part in ("", "_ci_low", "_ci_high"))], SEARCH_SCORES),
    "nb201_pnas_vs_popnas_tests": dict.fromkeys(["mean_difference", "statistic", "p_value"], SEARCH_SCORES),
    "fidelity_dial_nb201": {"tau": SETTING, **dict.fromkeys(["mean", "std", "ci_low", "ci_high"], SEARCH_SCORES)},
    "fidelity_dial_nb201_order": {"tau": SETTING, "reference_tau": SETTING, "kendall_tau_to_reference": SEARCH_SCORES},
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper")
    sections = run_paper(folder, None, SMALL_SETTINGS)
    return {section.id: section.ours for section in sections}, folder


def _tolerances(table_id: str, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``dataframe_regression`` tolerances of a table's float columns; every one must have a class."""
    classes = TOLERANCES[table_id]
    floats = [column for column in frame.columns if frame[column].dtype.kind == "f"]
    unassigned = sorted(set(floats) - set(classes))
    assert not unassigned, f"{table_id}: float column(s) {unassigned} have no tolerance class in TOLERANCES"
    return {column: classes[column].args() for column in floats}


TABLE_IDS = ["space_counts", "surrogate_calibration", "popnas_table3", "popnas_table4", "popnas_table5",
             "popnas_table6", "popnas_table7", "popnas_table8", "popnas_fronts", "popnas_time_limit", "pnas_table1", "pnas_fig4", "thesis_table4_3",
             "thesis_table5_4", "thesis_kendall_fidelity", "fidelity_dial", "fidelity_dial_order",
             "nb201_time_regressors", "nb201_predictor_ranking", "nb201_train_sizes",
             "nb201_pnas_vs_popnas", "nb201_pnas_vs_popnas_tests", "fidelity_dial_nb201", "fidelity_dial_nb201_order"]


def test_every_table_has_its_tolerances():
    assert set(TOLERANCES) == set(TABLE_IDS) | {"popnas_table3_seed0"}


@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_table_matches_golden_file(tables, table_id, dataframe_regression):
    frame = tables[0][table_id].reset_index(drop=True)
    frame = frame.astype({c: str for c in frame.columns if frame[c].dtype.kind == "O"})
    dataframe_regression.check(frame, basename=table_id, tolerances=_tolerances(table_id, frame))


def test_outputs_written(tables):
    _, folder = tables
    written = {p.stem for p in (folder / "tables").glob("*.csv")}
    assert set(TABLE_IDS) <= written
    assert len(list((folder / "figures").glob("*.png"))) >= 5
    for target in ("cifar10", "lat_gold_6226"):
        assert (folder / "figures" / f"nb201_train_sizes_{target}.png").exists()
    report = (folder / "report.md").read_text()
    for table_id in TABLE_IDS:
        assert f"## `{table_id}`" in report
    # our CSVs hold our values only; the papers' appear in the report
    assert not any("paper" in pd.read_csv(folder / "tables" / f"{t}.csv").columns
                   for t in set(TABLE_IDS))


@pytest.fixture(scope="module")
def pnas_run():
    import backends
    from harness import CellSpace
    from harness.search import PNAS

    space = CellSpace.pnas(max_blocks=3)
    predictor = SMALL_SETTINGS["predictor"]
    return space, PNAS(space, backends.make("surrogate", space=space), K=16, seed=0,
                       predictor=predictor["name"], predictor_options=predictor["options"]).run().trained


def _table3(pnas_run):
    from ablations.popnas_time_regressors import popnas_table3

    space, trained = pnas_run
    return popnas_table3(trained, space, {"param_grid": SMALL_SETTINGS["regressors"]["xgboost_grid"]})[0]


def test_table3_single_run_matches_golden_file(pnas_run, dataframe_regression):
    table = _table3(pnas_run)
    dataframe_regression.check(table, basename="popnas_table3_seed0", tolerances=_tolerances("popnas_table3_seed0", table))


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
        dataframe_regression.check(table, basename="popnas_table3_seed0", tolerances=_tolerances("popnas_table3_seed0", table))
