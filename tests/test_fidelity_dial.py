"""The fidelity_dial study: one run's measures, the tau = 1 identity, and the sweep's aggregate, on the
surrogate and on NAS-Bench-201."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.fidelity_dial import (
    METHODS,
    METRICS,
    fidelity_run,
    fidelity_runs,
    method_order_agreement,
    metrics,
    summarise,
)
from harness.app.sweep import finished_jobs, mean_interval
from harness.nb201_space import NB201Space
from harness.space import CellSpace
from tests.test_sweeps import run_sweep

#: A tiny run: two-block cells, K = 8, a plain MLP trained briefly (well under a second each).
TINY = {"max_blocks": 2, "K": 8, "rank_sample": 5000, "predictor": "mlp",
        "predictor_options": {"epochs": 10, "output_bias": None}}

#: The copula maps clean accuracies to normal scores and back through tables on a 65,536-point grid
#: (``harness.noise.GaussianCopula``), so at tau = 1 a noisy accuracy is its clean one up to the linear
#: interpolation's error: measured <= 2e-6; two distinct cells' clean accuracies differ by ~1e-4 or more.
COPULA_ROUND_TRIP = 1e-5


@pytest.fixture(scope="module")
def clean_runs():
    return fidelity_runs(METHODS, [1.0], [0, 1], **TINY)


def test_at_tau_one_every_method_picks_its_best_clean_cell(clean_runs):
    assert set(clean_runs["method"]) == set(METHODS)
    # the cell picked by noisy accuracy is the best trained cell by clean accuracy
    np.testing.assert_array_equal(clean_runs["best_clean_accuracy"], clean_runs["oracle_clean_accuracy"])
    np.testing.assert_allclose(clean_runs["best_noisy_accuracy"], clean_runs["best_clean_accuracy"],
                               rtol=0, atol=COPULA_ROUND_TRIP)


def test_a_noisy_evaluator_can_mislead_the_pick():
    # at tau = 0.55 some method hands over a cell worse than its best trained one, and a noisy
    # accuracy that is not the clean one
    runs = fidelity_runs(METHODS, [0.55], [0, 1], **TINY)
    assert (runs["best_clean_accuracy"] <= runs["oracle_clean_accuracy"]).all()
    assert (runs["best_clean_accuracy"] < runs["oracle_clean_accuracy"]).any()
    assert (np.abs(runs["best_noisy_accuracy"] - runs["best_clean_accuracy"]) > 1e-3).any()


def test_run_measures(clean_runs):
    row = clean_runs.iloc[0]
    assert 0 <= row["clean_top_fraction"] < 0.5  # searches find cells better than a typical one
    pnas = clean_runs[clean_runs["method"] == "pnas"]
    # PNAS, random search and evolution train the same budget: step 1's 136 one-block cells + K
    budget = len(CellSpace.pnas(max_blocks=2).initial_cells()) + TINY["K"]
    for method in ("pnas", "random", "evolution"):
        assert set(clean_runs.loc[clean_runs["method"] == method, "cells_trained"]) == {budget}
    assert (clean_runs.loc[clean_runs["method"] == "popnas", "cells_trained"] <= budget).all()
    assert (pnas["search_time"] > 0).all()


def test_runs_reject_bad_settings():
    with pytest.raises(ValueError, match="unknown method 'bayes'"):
        fidelity_run("bayes", 1.0, 0, **TINY)
    with pytest.raises(ValueError, match="must not set tau"):
        fidelity_run("random", 1.0, 0, **TINY, backend_options={"tau": 0.5})
    with pytest.raises(ValueError, match="rank_sample must be a positive integer"):
        fidelity_run("random", 1.0, 0, **{**TINY, "rank_sample": 0})
    with pytest.raises(ValueError, match="unknown landscape 'nb101'"):
        fidelity_run("random", 1.0, 0, landscape="nb101")
    with pytest.raises(ValueError, match="max_blocks=3: NAS-Bench-201 cells have 6 edges"):
        fidelity_run("random", 1.0, 0, landscape="nb201", max_blocks=3)


def test_summary_and_method_order(clean_runs):
    summary = summarise(clean_runs)
    assert len(summary) == len(METHODS) * len(METRICS) and set(summary["n_seeds"]) == {2}
    row = summary[(summary["method"] == "random") & (summary["metric"] == "best_clean_accuracy")].iloc[0]
    values = clean_runs.loc[clean_runs["method"] == "random", "best_clean_accuracy"]
    assert (row["mean"], row["std"], row["ci_low"], row["ci_high"]) == pytest.approx(mean_interval(values))
    order = method_order_agreement(summary)
    assert order["kendall_tau_to_reference"].tolist() == [1.0]
    assert sorted(order["order"].iloc[0].split(" > ")) == sorted(METHODS)


def test_multirun_sweep_aggregates_one_row_per_method_and_tau(tmp_path):
    sweep = tmp_path / "multirun" / "fidelity_dial"
    result = run_sweep("experiment=fidelity_dial", "experiment.method=pnas,popnas,random,evolution",
                       "experiment.tau=0.65,1.0", "seed=0,1", "experiment.max_blocks=2", "experiment.K=8",
                       "experiment.rank_sample=5000", "experiment.predictor=mlp",
                       "++experiment.predictor_options.epochs=10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(finished_jobs(sweep)) == 4 * 2 * 2
    table = pd.read_csv(sweep / "aggregate" / "fidelity.csv")
    for metric, rows in table.groupby("metric"):
        pairs = list(zip(rows["experiment.method"], rows["experiment.tau"]))
        assert sorted(pairs) == sorted((m, t) for m in METHODS for t in (0.65, 1.0)), metric
        assert set(rows["n_seeds"]) == {2} and set(rows["seeds"]) == {"0 1"}
    assert set(table["metric"]) == set(METRICS)
    clean = table[table["experiment.tau"] == 1.0].pivot(index="experiment.method", columns="metric", values="mean")
    np.testing.assert_allclose(clean["best_clean_accuracy"], clean["oracle_clean_accuracy"], rtol=0, atol=0)
    order = pd.read_csv(sweep / "aggregate" / "method_order.csv")
    assert order["tau"].tolist() == [0.65, 1.0] and order["kendall_tau_to_reference"].iloc[-1] == 1.0
    assert (sweep / "aggregate" / "fidelity_dial.png").stat().st_size > 0


# ---------------------------------------------------------------------------- NAS-Bench-201
#: NAS-Bench-201 runs small enough for a test: K = 4 (24 + 5 * 4 = 44 cells a search).
NB201_TINY = {"landscape": "nb201", "K": 4}


@pytest.fixture(scope="module")
def nb201_runs():
    return fidelity_runs(METHODS, [0.65, 1.0], [0, 1], **NB201_TINY)


def test_nb201_at_tau_one_the_pick_is_the_best_real_cell(nb201_runs):
    clean = nb201_runs[nb201_runs["tau"] == 1.0]
    # at tau = 1 the backend serves the table itself: noisy and real accuracy are the same numbers
    np.testing.assert_array_equal(clean["best_noisy_accuracy"], clean["best_clean_accuracy"])
    np.testing.assert_array_equal(clean["best_clean_accuracy"], clean["oracle_clean_accuracy"])
    noisy = nb201_runs[nb201_runs["tau"] == 0.65]
    assert (noisy["best_clean_accuracy"] <= noisy["oracle_clean_accuracy"]).all()
    assert (noisy["best_noisy_accuracy"] != noisy["best_clean_accuracy"]).all()


def test_nb201_rank_is_exact_among_all_cells(nb201_runs):
    from backends.nb201 import NB201Backend

    assert list(nb201_runs.columns[3:]) == list(metrics("nb201"))
    real = NB201Backend().clean_accuracy(NB201Space().all_cells())
    for _, row in nb201_runs.iterrows():
        better = int((real > row["best_clean_accuracy"]).sum())
        assert row["clean_rank"] == 1 + better
        assert row["clean_top_fraction"] == better / 15_625
    # PNAS, random search and evolution evaluate the same budget: 24 one-operator cells + 5 K
    for method in ("pnas", "random", "evolution"):
        assert set(nb201_runs.loc[nb201_runs["method"] == method, "cells_trained"]) == {24 + 5 * 4}
    summary = summarise(nb201_runs)
    assert len(summary) == len(METHODS) * 2 * len(metrics("nb201")) and set(summary["n_seeds"]) == {2}


def test_nb201_multirun_sweep_aggregates_one_row_per_method_and_tau(tmp_path):
    sweep = tmp_path / "multirun" / "fidelity_dial_nb201"
    result = run_sweep("experiment=fidelity_dial", "experiment.landscape=nb201",
                       "experiment.method=pnas,popnas,random,evolution", "experiment.tau=0.75,1.0", "seed=0,1",
                       "experiment.K=4", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(finished_jobs(sweep)) == 4 * 2 * 2
    table = pd.read_csv(sweep / "aggregate" / "fidelity.csv")
    assert set(table["metric"]) == set(metrics("nb201"))
    for metric, rows in table.groupby("metric"):
        pairs = list(zip(rows["experiment.method"], rows["experiment.tau"]))
        assert sorted(pairs) == sorted((m, t) for m in METHODS for t in (0.75, 1.0)), metric
        assert set(rows["n_seeds"]) == {2}
    clean = table[table["experiment.tau"] == 1.0].pivot(index="experiment.method", columns="metric", values="mean")
    np.testing.assert_array_equal(clean["best_clean_accuracy"], clean["best_noisy_accuracy"])
    assert (sweep / "aggregate" / "fidelity_dial.png").stat().st_size > 0
