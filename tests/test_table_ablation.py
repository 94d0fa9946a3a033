"""The ablations on a user's table: the functions a notebook calls, and the one-command experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.table_ablation import (PREDICTOR_COLUMNS, accuracy_predictor_ablation, run_table_ablation,
                                      time_regressor_ablation)
from backends.user_table import load_user_table
from tests.test_config import run_cli
from tests.tiny_tables import write_tiny_table

GRID = {"max_depth": [2], "n_estimators": [20], "learning_rate": [0.1]}
TINY = {"trials": 2, "n_boot": 50, "train_sizes": [16, 32]}


@pytest.fixture(scope="module")
def nb101_table(tmp_path_factory):
    path = write_tiny_table(tmp_path_factory.mktemp("table") / "nb101.csv", "nb101")
    return load_user_table(path, space="nb101")


def test_time_regressors_follow_the_size_steps(nb101_table):
    summary, predictions, skipped = time_regressor_ablation(nb101_table, "nb101", xgboost_grid=GRID)
    assert set(summary["regressor"]) == {"block_sum", "ridge", "nnls", "xgboost", "cost_nnls", "mean"}
    assert sorted(predictions["step"].unique()) == [2, 3]  # sizes 0 and 1 give the first 5+ training cells
    assert skipped["step"].tolist() == [1]
    proper = summary[summary["evaluation"] == "proper"].set_index(["regressor", "blocks"])
    # the table's time is FLOPs-driven: the cost regressor ranks and predicts it, the mean cannot rank
    assert (proper.loc["cost_nnls", "mean_relative_error"] < proper.loc["mean", "mean_relative_error"]).all()
    assert (proper.loc["cost_nnls", "kendall_tau"] > 0.8).all() and proper.loc["mean", "kendall_tau"].isna().all()
    last = summary[(summary["evaluation"] == "progressive") & (summary["blocks"] == 3)]
    assert (last["n"] == (predictions["regressor"] == "nnls").sum()).all()


def test_accuracy_predictors_on_the_next_size_and_train_sizes(nb101_table):
    frame = accuracy_predictor_ablation(nb101_table, "nb101", predictors=["ridge", "xgboost"], **TINY)
    assert list(frame.columns) == list(PREDICTOR_COLUMNS)
    assert set(frame["split"]) == {"next_size", "random"} and set(frame["method"]) == {"kendall", "spearman"}
    nxt = frame[frame["split"] == "next_size"]
    assert sorted(nxt["fit_blocks"].unique()) == [1, 2] and (nxt["eval_blocks"] == nxt["fit_blocks"] + 1).all()
    assert sorted(frame.loc[frame["split"] == "random", "n_train"].unique()) == [16, 32]
    # accuracy grows with the parameter count, which the features see: the ranking is far from chance
    assert (frame.loc[frame["predictor"] == "ridge", "value"] > 0.2).all()
    again = accuracy_predictor_ablation(nb101_table, "nb101", predictors=["ridge", "xgboost"], **TINY)
    pd.testing.assert_frame_equal(frame, again)


def test_run_table_ablation_writes_every_output(tmp_path):
    path = write_tiny_table(tmp_path / "mine.parquet", "nb101")
    tables = run_table_ablation(path, tmp_path / "out", space="nb101", xgboost_grid=GRID,
                                predictors=["ridge"], **TINY)
    for name in ("table_sizes", "table_time_regressors", "table_predictor_ranking", "table_time_predictions"):
        assert (tmp_path / "out" / "tables" / f"{name}.csv").exists()
    assert {p.name for p in (tmp_path / "out" / "figures").iterdir()} == {"time_regressors.png",
                                                                         "predictor_train_sizes.png"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## `table_time_regressors`" in report and "cost_nnls" in report
    assert tables["table_sizes"]["cells"].tolist() == [1, 6, 40, 30]


@pytest.mark.slow
@pytest.mark.parametrize("space", ["nb101", "pnas", "nb201"])
def test_one_command_experiment_on_a_tiny_table(tmp_path, space):
    path = write_tiny_table(tmp_path / f"{space}.csv", space)
    out = tmp_path / "run"
    extra = ["table.max_blocks=3"] if space == "pnas" else []
    result = run_cli("experiment=table_ablation", f"table.path={path}", f"table.space={space}", *extra,
                     f"hydra.run.dir={out}", "experiment.settings.trials=1", "experiment.settings.n_boot=20",
                     "experiment.settings.train_sizes=[16]",
                     "++experiment.settings.xgboost_grid.max_depth=[2]",
                     "++experiment.settings.xgboost_grid.n_estimators=[10]",
                     "++experiment.settings.predictor_options.mlp.epochs=5" if space == "pnas" else
                     "experiment.settings.predictors=[ridge]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("table_sizes", "table_time_regressors", "table_predictor_ranking", "table_time_predictions"):
        assert (out / "tables" / f"{name}.csv").exists(), name
    assert (out / "figures" / "time_regressors.png").exists() and (out / "report.md").exists()
    summary = pd.read_csv(out / "tables" / "table_time_regressors.csv")
    assert {"cost_nnls", "nnls", "block_sum"} <= set(summary["regressor"])


def test_the_experiment_needs_a_table_path(tmp_path):
    result = run_cli("experiment=table_ablation", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode != 0 and "table.path" in result.stderr
