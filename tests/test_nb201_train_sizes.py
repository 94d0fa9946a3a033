"""The NAS-Bench-201 train-size sweep: precision at top-k, and the sweep's table."""

from __future__ import annotations

import numpy as np
import pytest

from ablations.nb201_train_sizes import SWEEP_COLUMNS, nb201_train_sizes, precision_at_k


def test_precision_at_k():
    true = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    assert precision_at_k(true, true, 2, higher_is_better=True) == 1.0
    assert precision_at_k(-true, true, 2, higher_is_better=True) == 0.0
    assert precision_at_k(np.array([0.9, 0.1, 0.8, 0.2, 0.3]), true, 2, higher_is_better=True) == 0.5
    # latencies: the fastest are the best
    assert precision_at_k(true, true, 2, higher_is_better=False) == 1.0


@pytest.mark.parametrize("target, models, metrics", [
    ("cifar10", ("ridge", "xgboost"), {"kendall", "spearman", "precision_at_10", "precision_at_100"}),
    ("lat_gold_6226", ("nnls", "mean"), {"kendall", "spearman", "precision_at_10", "precision_at_100",
                                        "mean_relative_error"}),
])
def test_sweep_table(target, models, metrics):
    table = nb201_train_sizes(target=target, models=models, sizes=(8, 64), trials=3, n_boot=50)
    assert list(table.columns) == list(SWEEP_COLUMNS)
    assert set(table["metric"]) == metrics and len(table) == len(models) * 2 * len(metrics)
    fitted = table[table["model"] != "mean"]
    assert (fitted["ci_low"] <= fitted["value"] + 1e-12).all() and (fitted["value"] <= fitted["ci_high"] + 1e-12).all()
    kendall = fitted[fitted["metric"] == "kendall"].set_index(["model", "n_train"])["value"]
    # more training cells rank the rest better (large margins at these sizes on NAS-Bench-201)
    assert all(kendall[(m, 64)] > kendall[(m, 8)] for m in fitted["model"].unique())
    again = nb201_train_sizes(target=target, models=models, sizes=(8, 64), trials=3, n_boot=50)
    assert table.equals(again)


def test_sweep_rejects_bad_settings():
    with pytest.raises(ValueError, match="models"):
        nb201_train_sizes(target="lat_gold_6226", models=("block_sum",))
    with pytest.raises(ValueError, match="unknown target"):
        nb201_train_sizes(target="mnist", models=("ridge",), sizes=(8,), trials=1)
