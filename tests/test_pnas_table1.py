"""PNAS Table 1 (Algorithm 2) on the surrogate at tiny scale, and the trial-mean bootstrap it reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import backends
from ablations import paper_numbers
from ablations.pnas_table1 import (
    MAIN_JOB_SCALE,
    PAPER_SCALE,
    TABLE1_COLUMNS,
    pnas_table1,
    trial_mean_correlation,
)
from harness.space import CellSpace

#: Tiny but real: two predictors, sizes 1 and 2, short training.
TINY = dict(
    predictors=("mlp", "mlp-ensemble"), max_blocks=3, K=32, R=300, trials=2, n_boot=100,
    predictor_options={"mlp": {"epochs": 30}, "mlp-ensemble": {"epochs": 30}},
)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pnas_table1(**TINY)


def test_layout_matches_the_paper_table(table):
    assert tuple(table.columns) == TABLE1_COLUMNS
    assert len(table) == 2 * 2 * 2  # predictors x sizes x {train, next}
    assert set(table["predictor"]) == {"MLP", "MLP-ensemble"}
    train = table[table["evaluated_on"] == "train"]
    nxt = table[table["evaluated_on"] == "next"]
    assert (train["eval_blocks"] == train["fit_blocks"]).all()
    assert (nxt["eval_blocks"] == nxt["fit_blocks"] + 1).all()
    assert (train["n"] == 32).all() and (nxt["n"] == 300).all()
    # every row finds its paper value on the shared key columns
    joined = table.merge(paper_numbers.pnas_table1(),
                         on=["predictor", "fit_blocks", "evaluated_on", "eval_blocks"], how="left")
    assert joined["paper"].notna().all()


def test_values_are_correlations_inside_their_intervals(table):
    values = table[["spearman_mean", "ci_low", "ci_high"]].to_numpy()
    assert np.isfinite(values).all() and (np.abs(values) <= 1).all()
    assert (table["ci_low"] <= table["spearman_mean"]).all()
    assert (table["spearman_mean"] <= table["ci_high"]).all()
    assert (table["spearman_std"] >= 0).all() and (table["std_error"] > 0).all()


def test_training_set_is_ranked_better_than_larger_unseen_cells(table):
    # PNAS 5.2: rho-hat on the training set is well above rho-tilde on larger cells
    by_set = table.groupby("evaluated_on")["spearman_mean"].mean()
    assert by_set["train"] > by_set["next"] + 0.2


def test_same_seed_same_table_and_another_seed_differs(table):
    pd.testing.assert_frame_equal(pnas_table1(**TINY), table)
    other = pnas_table1(**{**TINY, "seed": 1, "predictors": ("mlp",),
                           "predictor_options": {"mlp": {"epochs": 30}}})
    mine = table[table["predictor"] == "MLP"].reset_index(drop=True)
    assert not np.allclose(other["spearman_mean"], mine["spearman_mean"])


def test_paper_scale_is_the_default_and_main_job_is_smaller():
    assert (PAPER_SCALE.K, PAPER_SCALE.R, PAPER_SCALE.trials) == (256, 10_000, 20)
    kwargs = MAIN_JOB_SCALE.as_kwargs()
    assert kwargs["R"] < PAPER_SCALE.R and kwargs["trials"] < PAPER_SCALE.trials
    kwargs["predictor_options"]["lstm"]["epochs"] = 1  # a copy: the constant is untouched
    assert MAIN_JOB_SCALE.predictor_options["lstm"]["epochs"] != 1


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"predictors": ("mlp", "gru")}, "predictors must be distinct names"),
        ({"predictors": ("mlp", "mlp")}, "predictors must be distinct names"),
        ({"predictor_options": {"lstm": {"epochs": 1}}}, "not run"),
        ({"predictor_options": {"mlp": {"seed": 3}}}, "may not set"),
        ({"K": 2}, "K must be"),
        ({"trials": 0}, "trials must be"),
        ({"max_blocks": 1}, "max_blocks must be"),
        ({"n_boot": 1}, "n_boot must be"),
    ],
)
def test_bad_settings_are_rejected_before_any_work(overrides, match):
    with pytest.raises(ValueError, match=match):
        pnas_table1(**{**TINY, **overrides})


def test_backend_with_too_few_blocks_is_rejected():
    small = backends.make("surrogate", space=CellSpace.pnas(max_blocks=2))
    with pytest.raises(ValueError, match="at least max_blocks=3"):
        pnas_table1(small, **TINY)


# ---------------------------------------------------------------------- trial_mean_correlation
def _noisy_pairs(rho: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_trial_mean_is_the_mean_of_per_trial_correlations(method):
    trials = [_noisy_pairs(0.5, 60, s) for s in range(3)]
    estimate, values = trial_mean_correlation(trials, method=method, n_boot=200, seed=0)
    scipy_fn = stats.spearmanr if method == "spearman" else stats.kendalltau
    expected = [scipy_fn(x, y).statistic for x, y in trials]
    np.testing.assert_allclose(values, expected)
    assert estimate.value == pytest.approx(np.mean(expected))
    assert estimate.ci_low < estimate.value < estimate.ci_high
    assert estimate.n == 180 and estimate.method == method


def test_interval_covers_the_spread_between_trials():
    # within-trial sampling error is tiny (n = 2000), so only resampling trials can widen the interval
    differing = [_noisy_pairs(0.2, 2000, 0), _noisy_pairs(0.8, 2000, 1)]
    alike = [_noisy_pairs(0.5, 2000, 0), _noisy_pairs(0.5, 2000, 1)]
    wide, _ = trial_mean_correlation(differing, n_boot=200, seed=0)
    narrow, _ = trial_mean_correlation(alike, n_boot=200, seed=0)
    assert wide.ci_high - wide.ci_low > 0.3
    assert narrow.ci_high - narrow.ci_low < 0.1


def test_perfect_rankings_and_undefined_trials():
    x = np.arange(20.0)
    perfect, _ = trial_mean_correlation([(x, x), (x, 2 * x)], n_boot=50, common_cells=True)
    assert perfect.value == perfect.ci_low == perfect.ci_high == pytest.approx(1.0)
    # a constant prediction has no ranking: that trial is left out of the mean
    estimate, values = trial_mean_correlation([(x, x), (np.ones(20), x)], n_boot=50)
    assert np.isnan(values[1]) and estimate.value == pytest.approx(1.0)


def test_trial_mean_is_deterministic_by_seed():
    trials = [_noisy_pairs(0.3, 50, s) for s in range(2)]
    first, _ = trial_mean_correlation(trials, n_boot=100, seed=4)
    assert first == trial_mean_correlation(trials, n_boot=100, seed=4)[0]
    assert first.ci_low != trial_mean_correlation(trials, n_boot=100, seed=5)[0].ci_low


@pytest.mark.parametrize(
    "trials, options, match",
    [
        ([], {}, "at least one trial"),
        ([(np.ones(3), np.ones(4))], {}, "equal length"),
        ([(np.arange(2.0), np.arange(2.0))], {}, "at least 3 pairs"),
        ([(np.array([1.0, np.nan, 2.0]), np.arange(3.0))], {}, "finite"),
        ([(np.arange(3.0), np.arange(3.0)), (np.arange(4.0), np.arange(4.0))], {"common_cells": True},
         "same number of pairs"),
        ([(np.arange(3.0), np.arange(3.0))], {"method": "pearson"}, "unknown method"),
        ([(np.arange(3.0), np.arange(3.0))], {"n_boot": 1}, "n_boot"),
        ([(np.arange(3.0), np.arange(3.0))], {"confidence": 1.0}, "confidence"),
    ],
)
def test_trial_mean_rejects_bad_input(trials, options, match):
    with pytest.raises(ValueError, match=match):
        trial_mean_correlation(trials, **options)


def test_the_smooth_part_of_the_surrogate_is_what_ranks_larger_cells_at_b1():
    """The report's explanation of the gap to the paper's b = 1 rho-tilde (0.113, MLP): without the
    surrogate's smooth additive part the MLP ranks two-block cells about as badly as PNAS measured."""
    rho_tilde = {}
    for smoothness in (0.5, 0.0):
        backend = backends.make("surrogate", space=CellSpace.pnas(max_blocks=2), smoothness=smoothness)
        table = pnas_table1(backend, predictors=["mlp"], max_blocks=2, R=1000, trials=2, n_boot=200,
                            predictor_options={"mlp": {"epochs": 75, "output_bias": None}})
        row = table[table["evaluated_on"] == "next"].iloc[0]
        rho_tilde[smoothness] = (row["spearman_mean"], row["ci_low"], row["ci_high"])
    paper = paper_numbers.pnas_table1().set_index(["predictor", "fit_blocks", "evaluated_on"])
    paper_value = paper.loc[("MLP", 1, "next"), "paper"]
    assert rho_tilde[0.5][1] > 0.5  # the default surrogate: one-block cells rank two-block ones well
    low, high = rho_tilde[0.0][1:]
    assert low <= paper_value <= high  # the rugged part alone: the paper's value inside the interval
