"""The vectorised sga: exact replay against a per-repetition reference, search behaviour, noise, pygmo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.genetic import (
    CROSSOVERS,
    GENE_DTYPE,
    GASettings,
    NoisyRastrigin,
    crossover_mask,
    distinct_slots,
    draw_generation,
    flat_index,
    run_ga,
    run_pygmo_sga,
)
from harness.rastrigin import RastriginGrid

RES = 6  # grid points per axis of the replay test


def reference_generation(genomes, fitness, draws, settings, values):
    """pagmo's sga generation written out per repetition and per individual, from the same draws."""
    reps, population, dims = genomes.shape
    cr = settings.crossover_probability
    new_genomes, new_fitness = np.empty_like(genomes), np.empty_like(fitness)
    for r in range(reps):
        parents, parent_fitness = genomes[r], fitness[r]
        selected = []
        for j in range(population):
            winner = draws.contestants[r, j, 0]
            for contestant in draws.contestants[r, j, 1:]:
                if parent_fitness[contestant] < parent_fitness[winner]:
                    winner = contestant
            selected.append(parents[winner].copy())
        children = [x.copy() for x in selected]
        for i, child in enumerate(children):
            partner = selected[draws.partners[r, i]]
            n, u = int(draws.crossover_start[r, i]), draws.crossover_uniform[r, i]
            if settings.crossover == "exponential":
                copied = 0
                while True:
                    child[n] = partner[n]
                    n, copied = (n + 1) % dims, copied + 1
                    if not (copied < dims and u[copied - 1] < cr):
                        break
            elif settings.crossover == "binomial":
                for step in range(dims):
                    if u[step] < cr or step == dims - 1:
                        child[n] = partner[n]
                    n = (n + 1) % dims
            elif u[0] < cr:  # single point
                child[n:] = partner[n:]
            for d in range(dims):
                if draws.mutate[r, i, d]:
                    child[d] = draws.new_genes[r, i, d]
        child_fitness = [values[r, flat_index(c, RES)] for c in children]
        pool = children + list(parents)
        pool_fitness = child_fitness + list(parent_fitness)
        order = sorted(range(2 * population), key=lambda k: pool_fitness[k])[:population]
        new_genomes[r] = [pool[k] for k in order]
        new_fitness[r] = [pool_fitness[k] for k in order]
    return new_genomes, new_fitness


@pytest.fixture(scope="module")
def small_grid():
    return RastriginGrid(3, RES)


@pytest.mark.parametrize("crossover", CROSSOVERS)
@pytest.mark.parametrize("tournament_size", [2, 3])
def test_vectorised_generation_replays_the_reference_exactly(small_grid, crossover, tournament_size):
    settings = GASettings(population=6, tournament_size=tournament_size, crossover=crossover,
                          crossover_probability=0.6, mutation_probability=0.2)
    reps = 4
    # few distinct values: ties exercise the tournament's and the reinsertion's tie rules
    values = np.random.default_rng(1).integers(0, 5, size=(reps, small_grid.size)).astype(float)
    result = run_ga(small_grid, values, (0, 4, 9), settings=settings, seed=3)

    rng = np.random.default_rng(3)
    genomes = rng.integers(0, RES, size=(reps, settings.population, 3), dtype=GENE_DTYPE)
    fitness = np.take_along_axis(values, flat_index(genomes, RES), axis=1)
    best = {}
    for g in range(1, 10):
        draws = draw_generation(rng, reps, 3, RES, settings)
        genomes, fitness = reference_generation(genomes, fitness, draws, settings, values)
        best[g] = flat_index(genomes[np.arange(reps), np.argmin(fitness, axis=1)], RES)
    np.testing.assert_array_equal(result.best_index[1], best[4])
    np.testing.assert_array_equal(result.best_index[2], best[9])
    np.testing.assert_array_equal(result.best_fitness[2], fitness.min(axis=1))


def test_distinct_slots_are_distinct_and_uniform_over_ordered_choices():
    draws = distinct_slots(np.random.default_rng(0), (24_000,), 4, 3)
    assert all(len(set(row)) == 3 for row in draws[:500])
    assert draws.min() == 0 and draws.max() == 3
    # 4 * 3 * 2 = 24 ordered triples, each expected 1,000 times
    _, counts = np.unique(draws, axis=0, return_counts=True)
    assert len(counts) == 24
    assert stats.chisquare(counts).pvalue > 0.001


def test_partners_skip_the_childs_own_slot():
    draws = draw_generation(np.random.default_rng(0), 500, 3, 10, GASettings())
    assert not (draws.partners == np.arange(10)).any()
    assert set(np.unique(draws.partners)) == set(range(10))


def test_exponential_crossover_copies_one_more_gene_per_success():
    settings = GASettings()
    draws = draw_generation(np.random.default_rng(0), 20_000, 3, 10, settings)
    copied = crossover_mask(draws, settings).sum(axis=-1).ravel()
    # P(1) = 0.1, P(2) = 0.9 * 0.1, P(3) = 0.9 ** 2
    freq = np.bincount(copied, minlength=4)[1:] / copied.size
    np.testing.assert_allclose(freq, [0.1, 0.09, 0.81], atol=0.01)


@pytest.fixture(scope="module")
def grid3():
    return RastriginGrid(3, 24)


@pytest.fixture(scope="module")
def clean_run(grid3):
    return run_ga(grid3, NoisyRastrigin(grid3, 1.0, 300), (0, 10, 100, 1000), seed=0)


def test_more_generations_find_better_points_on_the_clean_grid(clean_run):
    mean = clean_run.top_fraction.mean(axis=1)
    assert mean[0] > mean[1] > mean[2] > mean[3]
    # the initial best of 10 uniform points: expected top fraction about 1/11
    assert 0.07 < mean[0] < 0.12
    # after 1,000 generations nearly every run sits on the global minimum (measured: 0)
    assert mean[3] < 1e-3
    assert clean_run.summary()["generations"].tolist() == [0, 10, 100, 1000]


def test_elitism_never_loses_the_best(clean_run):
    assert (np.diff(clean_run.best_fitness, axis=0) <= 0).all()


def test_noise_makes_the_final_solution_worse(grid3, clean_run):
    noisy = run_ga(grid3, NoisyRastrigin(grid3, 0.75, 300), (0, 10, 100, 1000), seed=0)
    # measured at 24^3: clean 0.0, tau 0.75 about 0.01 (standard error about 0.001)
    assert noisy.top_fraction[-1].mean() > clean_run.top_fraction[-1].mean() + 0.004
    # and on the other quality measure (measured: 0 against about 0.05)
    assert noisy.normalised_value[-1].mean() > clean_run.normalised_value[-1].mean() + 0.02


def test_same_seed_same_run_other_seed_other_run(grid3):
    fitness = NoisyRastrigin(grid3, 0.85, 20)
    a = run_ga(grid3, fitness, (5, 20), seed=1)
    b = run_ga(grid3, fitness, (5, 20), seed=1)
    c = run_ga(grid3, fitness, (5, 20), seed=2)
    np.testing.assert_array_equal(a.best_index, b.best_index)
    assert (a.best_index != c.best_index).any()


def test_noisy_grid_is_fresh_per_repetition_and_hits_its_tau():
    grid = RastriginGrid(2, 60)
    fitness = NoisyRastrigin(grid, 0.75, 12, seed=4)
    full = np.stack([fitness.at(r, np.arange(grid.size)) for r in range(12)])
    assert not np.allclose(full[0], full[1])
    # a value depends only on (repetition, point), not on the batch it is asked in
    picks = np.array([[5, 77, 3000]] * 12)
    np.testing.assert_array_equal(fitness(picks), np.take_along_axis(full, picks, axis=1))
    taus = fitness.kendall_tau()
    np.testing.assert_allclose(taus, [stats.kendalltau(row, grid.clean).statistic for row in full])
    assert taus.mean() == pytest.approx(0.75, abs=0.01)
    np.testing.assert_array_equal(NoisyRastrigin(grid, 1.0, 2).at(0, np.arange(grid.size)), grid.clean)


def test_array_and_function_fitness_give_the_same_run():
    grid = RastriginGrid(2, 30)
    fitness = NoisyRastrigin(grid, 0.85, 8)
    values = np.stack([fitness.at(r, np.arange(grid.size)) for r in range(8)])
    a = run_ga(grid, values, 30, seed=5)
    b = run_ga(grid, fitness, 30, seed=5)
    np.testing.assert_array_equal(a.best_index, b.best_index)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population": 1}, "population must be an integer >= 2, got 1"),
        ({"crossover_probability": 1.5}, "crossover_probability must be in \\[0, 1\\], got 1.5"),
        ({"tournament_size": 11}, "tournament_size must be an integer in 1..population=10, got 11"),
        ({"crossover": "sbx"}, "unknown crossover 'sbx'"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GASettings(**kwargs)


def test_bad_run_arguments_are_named():
    grid = RastriginGrid(2, 10)
    with pytest.raises(ValueError, match="shape \\(repetitions, 100\\)"):
        run_ga(grid, np.zeros((3, 99)), 5)
    with pytest.raises(ValueError, match="non-negative integers, got -1"):
        run_ga(grid, np.zeros((3, 100)), -1)
    with pytest.raises(ValueError, match="needs repetitions >= 1, got None"):
        run_ga(grid, lambda flat: flat * 1.0, 5)
    with pytest.raises(ValueError, match="tau must be a real number in \\(0, 1\\], got 0"):
        NoisyRastrigin(grid, 0, 3)


def test_pygmo_sga_agrees_in_distribution():
    pytest.importorskip("pygmo")
    grid = RastriginGrid(2, 40)
    ours = run_ga(grid, NoisyRastrigin(grid, 0.75, 400), (0, 10, 40), seed=0)
    theirs = run_pygmo_sga(NoisyRastrigin(grid, 0.75, 40), (0, 10, 40), seed=0)
    assert theirs.best_index.shape == (3, 40)
    # pygmo's champion is its best noisy value, never worse over generations
    assert (np.diff(theirs.best_fitness, axis=0) <= 0).all()
    for k in range(3):
        assert stats.mannwhitneyu(ours.top_fraction[k], theirs.top_fraction[k]).pvalue > 0.01


def test_pygmo_absence_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pygmo(name, *args, **kwargs):
        if name == "pygmo":
            raise ImportError("No module named 'pygmo'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pygmo)
    grid = RastriginGrid(2, 10)
    with pytest.raises(ImportError, match="popnas-harness\\[pygmo\\]"):
        run_pygmo_sga(NoisyRastrigin(grid, 1.0, 2), 3)
