"""Bootstrap rank correlations: intervals, exactness of the vectorised resamples, rounding ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import harness.metrics as metrics
from harness.metrics import (
    CorrelationEstimate,
    bootstrap_correlation,
    correlation_table,
    kendall_resamples,
    round_to_percent,
    spearman_resamples,
)


def correlated(n, rho=0.6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)


@pytest.mark.parametrize("method", ["kendall", "spearman"])
def test_interval_contains_value_and_shrinks_with_n(method):
    small = bootstrap_correlation(*correlated(50), method=method, n_boot=400)
    large = bootstrap_correlation(*correlated(800), method=method, n_boot=400)
    for est in (small, large):
        assert est.ci_low < est.value < est.ci_high
        assert est.n_boot == 400 and est.method == method
    # the standard error falls like 1/sqrt(n): sqrt(50/800) = 0.25
    assert 0.15 < large.std_error / small.std_error < 0.4
    assert large.ci_high - large.ci_low < 0.5 * (small.ci_high - small.ci_low)


def test_bootstrap_standard_error_matches_sampling_spread():
    """The bootstrap sd of tau-b estimates the spread of tau-b over fresh samples."""
    n = 100
    fresh = [stats.kendalltau(*correlated(n, seed=s)).statistic for s in range(1, 301)]
    est = bootstrap_correlation(*correlated(n, seed=0), n_boot=800)
    assert est.std_error == pytest.approx(np.std(fresh, ddof=1), rel=0.3)


@pytest.mark.parametrize(
    ("method", "reference"),
    [("kendall", stats.kendalltau), ("spearman", stats.spearmanr)],
)
def test_vectorised_resamples_equal_scipy_per_resample(method, reference):
    rng = np.random.default_rng(3)
    # rounded values: many ties, and every resample repeats pairs
    x = np.round(rng.random(120), 1)
    y = np.round(x + rng.normal(0, 0.2, 120), 1)
    index = rng.integers(0, 120, size=(60, 120))
    fast = (kendall_resamples if method == "kendall" else spearman_resamples)(x, y, index)
    slow = np.array([reference(x[row], y[row]).statistic for row in index])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_kendall_quadratic_and_per_resample_paths_agree(monkeypatch):
    x, y = correlated(200, seed=4)
    quadratic = bootstrap_correlation(np.round(x, 1), y, n_boot=200, seed=5)
    monkeypatch.setattr(metrics, "QUADRATIC_KENDALL_MAX_N", 10)
    looped = bootstrap_correlation(np.round(x, 1), y, n_boot=200, seed=5)
    assert quadratic.std_error == pytest.approx(looped.std_error, abs=1e-12)
    assert (quadratic.ci_low, quadratic.ci_high) == pytest.approx((looped.ci_low, looped.ci_high), abs=1e-12)


@pytest.mark.parametrize("method", ["kendall", "spearman"])
def test_chunked_resampling_gives_the_same_estimate(monkeypatch, method):
    x, y = correlated(120, seed=6)
    whole = bootstrap_correlation(x, y, method=method, n_boot=100)
    monkeypatch.setattr(metrics, "_CHUNK_PAIRS", 120 * 7)  # 15 chunks, the last one short
    assert bootstrap_correlation(x, y, method=method, n_boot=100) == whole


def test_rounding_to_percent_creates_ties_that_tau_b_discounts():
    accuracy = np.array([0.9121, 0.9138, 0.9162, 0.9171])
    rounded = round_to_percent(accuracy)
    np.testing.assert_array_equal(rounded, [0.91, 0.91, 0.92, 0.92])
    # 4 concordant pairs, none discordant, 2 pairs tied in x: tau-b = 4 / sqrt((6 - 2) * 6)
    est = bootstrap_correlation(rounded, np.arange(4.0), n_boot=50)
    assert est.value == pytest.approx(4 / math.sqrt(24))


def test_rounding_recovers_rank_agreement_lost_to_small_noise():
    """The thesis' reason to round: sub-percent noise reorders near-equal accuracies."""
    rng = np.random.default_rng(7)
    true = rng.integers(60, 95, size=400) / 100  # true accuracies on whole percents
    run_a = true + rng.normal(0, 0.001, 400)
    run_b = true + rng.normal(0, 0.001, 400)
    raw = bootstrap_correlation(run_a, run_b, n_boot=100).value
    rounded = bootstrap_correlation(round_to_percent(run_a), round_to_percent(run_b), n_boot=100).value
    assert rounded > raw + 0.02


def test_round_to_percent_rejects_percent_values():
    with pytest.raises(ValueError, match="fractions in \\[0, 1\\]"):
        round_to_percent(np.array([91.2, 93.0]))


def test_undefined_resamples_are_left_out():
    # x has two distinct values: resamples drawing only the zeros have undefined tau-b
    est = bootstrap_correlation(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0]), n_boot=400)
    assert est.value == pytest.approx(2 / math.sqrt(6))
    assert est.std_error > 0 and est.ci_high == 1.0


def test_same_seed_same_estimate_other_seed_other_spread():
    x, y = correlated(150)
    assert bootstrap_correlation(x, y, seed=1) == bootstrap_correlation(x, y, seed=1)
    assert bootstrap_correlation(x, y, seed=1).std_error != bootstrap_correlation(x, y, seed=2).std_error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "pearson"}, "unknown method 'pearson'"),
        ({"n_boot": 1}, "n_boot must be an integer >= 2, got 1"),
        ({"confidence": 1.0}, "confidence must be in \\(0, 1\\), got 1.0"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_correlation(*correlated(10), **kwargs)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.arange(5.0), np.arange(4.0), "equal length"),
        (np.arange(2.0), np.arange(2.0), "at least 3 pairs, got 2"),
        (np.array([0.0, np.nan, 1.0]), np.arange(3.0), "finite"),
    ],
)
def test_bad_samples_are_named(x, y, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_correlation(x, y)


def test_correlation_table_puts_labels_before_estimate_fields():
    est = bootstrap_correlation(*correlated(30), n_boot=50)
    table = correlation_table([({"epochs": 5, "rounding": "raw"}, est)])
    assert list(table.columns) == ["epochs", "rounding", *CorrelationEstimate.__dataclass_fields__]
    assert table.loc[0, "value"] == est.value and table.loc[0, "n"] == 30
