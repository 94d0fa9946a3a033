"""The regressor studies' noise floor: measurement error beside the regressors' errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import backends
from ablations.popnas_time_regressors import NOISE_FLOOR, STEP_DRIFT, noise_floor_rows
from ablations.popnas_time_regressors import sections as popnas_regressors
from ablations.run import PaperRun
from ablations.settings import PaperSettings
from harness import CellSpace
from harness.search import PNAS, POPNAS
from harness.search.drift import DriftMonitor, drift_report

PER_STEP = pd.DataFrame({"step": [1, 2, 3], "drift_factor": [1.0, 1.2, 0.9],
                         "noise_floor": [0.05, 0.10, 0.03], "tau": [0.9, 0.9, 0.9]})


def test_noise_floor_rows_are_the_steps_floor_and_drift():
    rows = noise_floor_rows(PER_STEP, steps=3).set_index(["regressor", "evaluation", "blocks"])
    value = rows["mean_relative_error"]
    assert value[NOISE_FLOOR, "proper", 2] == 0.10 and value[NOISE_FLOOR, "proper", 3] == 0.03
    assert value[NOISE_FLOOR, "progressive", 3] == pytest.approx(0.065)
    assert value[STEP_DRIFT, "proper", 2] == pytest.approx(0.2)
    assert value[STEP_DRIFT, "proper", 3] == pytest.approx(0.25)  # 0.9 / 1.2 - 1
    assert value[STEP_DRIFT, "progressive", 3] == pytest.approx(0.225)
    with pytest.raises(ValueError, match=r"lacks the columns \['noise_floor'\]"):
        noise_floor_rows(PER_STEP.drop(columns="noise_floor"), steps=3)


def test_measured_rows_carry_the_recordings_noise_floor(tmp_path):
    # a small "measured" table recorded with a drift monitor, on the surrogate as the trainer
    space = CellSpace.pnas(max_blocks=3)
    backend = backends.make("surrogate", space=space)
    fast = {"predictor": "mlp", "predictor_options": {"epochs": 20}, "drift_monitor": DriftMonitor()}
    results = {s.name: s.run() for s in (PNAS(space, backend, K=8, **fast), POPNAS(space, backend, K=8, **fast))}
    table = pd.concat([r.trained.assign(strategy=name) for name, r in results.items()], ignore_index=True)
    table.to_parquet(tmp_path / "measured.parquet")
    drift = drift_report(results["pnas"].drift)
    (tmp_path / "measured.json").write_text(json.dumps({"clock": "cpu", "drift": {"pnas": drift}}))
    run = PaperRun(tmp_path / "run", PaperSettings.of({
        "seeds": [0], "measured_table": str(tmp_path / "measured.parquet"),
        "predictor": {"name": "mlp", "options": {"epochs": 20, "output_bias": None}},
        "regressors": {"max_blocks": 3, "xgboost_grid": {"max_depth": [2], "n_estimators": [20]}},
        "searches": {"max_blocks": 3, "K": 8}}))
    sections = {s.id: s for s in popnas_regressors(run)}
    table3 = sections["popnas_table3"].ours
    floor = table3[(table3["source"] == "measured") & (table3["regressor"] == NOISE_FLOOR)]
    assert sorted(floor["blocks"].unique()) == [2, 3]
    # the surrogate's timing noise is a function of (cell, seed, epochs): repeats agree exactly
    assert np.allclose(floor["mean_relative_error"], 0.0)
    assert not (table3[table3["source"] == "surrogate"]["regressor"] == NOISE_FLOOR).any()
    assert (sections["popnas_table5"].ours["reindex"] == NOISE_FLOOR).sum() == 1
    notes = sections["popnas_table3"].notes
    assert "cpu time" in notes and "noise floor" in notes and "block sum" in notes
