"""Searches on NAS-Bench-201 (deterministic for a seed, resumable) and the nb201_pnas_vs_popnas study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import backends
from ablations.nb201_searches import METHODS, anytime_at_steps, nb201_pnas_vs_popnas
from harness.nb201_space import NB201Space
from harness.predictors import NB201Predictor
from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution

SPACE = NB201Space()
PREDICTOR = {"predictor": "ridge-ensemble"}


@pytest.fixture(scope="module")
def backend():
    return backends.make("nb201", dataset="cifar10", cost="lat_gold_6226")


def _search(name, backend, seed, K=8):
    if name == "pnas":
        return PNAS(SPACE, backend, K=K, seed=seed, **PREDICTOR)
    if name == "popnas":
        return POPNAS(SPACE, backend, K=K, seed=seed, **PREDICTOR)
    if name == "random":
        return RandomSearch(SPACE, backend, K=K, seed=seed, whole_space=True)
    return RegularizedEvolution(SPACE, backend, K=K, seed=seed, population_size=24, sample_size=6,
                                whole_space=True)


@pytest.mark.parametrize("name", METHODS)
def test_searches_are_deterministic_for_a_seed(backend, name):
    first = _search(name, backend, seed=3).run().trained
    again = _search(name, backend, seed=3).run().trained
    pd.testing.assert_frame_equal(first.drop(columns=["git_commit"]), again.drop(columns=["git_commit"]))
    other = _search(name, backend, seed=4).run().trained
    assert first["cell"].tolist() != other["cell"].tolist()
    assert first["step"].max() == SPACE.max_blocks
    # the backend's latency is the cost, in seconds the train_time POPNAS's regressor reads
    np.testing.assert_allclose(first["train_time"], first["cost"] / 1000)


def test_progressive_searches_grow_one_operator_a_step(backend):
    trained = _search("popnas", backend, seed=0).run().trained
    cells = trained[trained["blocks"] > 0]
    assert (cells["blocks"] == cells["step"]).all()
    assert (trained["blocks"] == 0).sum() == 1  # the initial thrust's empty cell
    per_step = trained.groupby("step").size()
    assert per_step.loc[1] == 25 and (per_step.loc[2:] <= 8).all()
    pnas = _search("pnas", backend, seed=0).run().trained
    assert pnas.groupby("step").size().tolist() == [24, 8, 8, 8, 8, 8]


def test_a_resumed_search_matches_an_uninterrupted_one(backend, tmp_path):
    whole = _search("popnas", backend, seed=1).run().trained
    _search("popnas", backend, seed=1).run(tmp_path)
    # drop the last steps' records, as a kill would leave them, and resume from the saved predictor state
    (tmp_path / "progress.json").write_text('{"completed_steps": 3}')
    resumed = _search("popnas", backend, seed=1).run(tmp_path).trained
    assert resumed["cell"].tolist() == whole["cell"].tolist()


def test_nb201_predictor_state_round_trip():
    cells = SPACE.sample(60, None, seed=0)
    accuracy = np.random.default_rng(0).random(60)
    model = NB201Predictor(model="ridge-ensemble", seed=2).fit(cells, accuracy)
    restored = NB201Predictor(model="ridge-ensemble", seed=2).set_state(model.get_state())
    probe = SPACE.sample(200, None, seed=1)
    np.testing.assert_array_equal(model.predict(probe), restored.predict(probe))
    np.testing.assert_array_equal(model.predict(SPACE.to_matrix(probe)), model.predict(probe.ops))
    with pytest.raises(ValueError, match="model must be one of"):
        NB201Predictor(model="lstm").fit(cells, accuracy)
    with pytest.raises(ValueError, match="keys X and y"):
        NB201Predictor().set_state({"X": np.zeros((1, 7))})


@pytest.fixture(scope="module")
def study():
    return nb201_pnas_vs_popnas(datasets=("cifar10",), devices=("lat_gold_6226", "lat_pixel3"), seeds=3, K=6)


def test_study_scores_are_in_range(study):
    scores = study.scores
    assert len(scores) == 2 * len(METHODS) * 3
    assert (scores["evaluated"] <= 24 + 5 * 6).all() and (scores["budget"] == 54).all()
    assert scores["normalised_hypervolume"].between(0, 1 + 1e-12).all()
    assert scores["front_recall"].between(0, 1).all()
    regrets = scores.filter(like="regret_")
    assert list(regrets.columns) == ["regret_q0.1", "regret_q0.25", "regret_q0.5", "regret_q1"]
    assert (regrets.to_numpy() >= 0).all()
    # the latency-blind searches make one set of choices, scored on both devices
    blind = scores[scores["method"] != "popnas"].pivot_table(index=["method", "seed"], columns="device",
                                                              values="evaluated")
    assert (blind["lat_gold_6226"] == blind["lat_pixel3"]).all()
    curves = study.anytime.groupby(["device", "method", "seed"])["normalised_hypervolume"]
    assert curves.apply(lambda c: (np.diff(c.to_numpy()) >= -1e-15).all()).all()
    last = study.anytime.groupby(["device", "method", "seed"], sort=False)["normalised_hypervolume"].last()
    np.testing.assert_allclose(last.to_numpy(), scores["normalised_hypervolume"].to_numpy())


def test_study_summary_tests_and_fronts(study):
    summary = study.summary
    assert summary["seeds"].eq(3).all() and (summary["ci_low"] <= summary["mean"] + 1e-12).all()
    assert study.tests["p_value"].between(0, 1).all()
    assert len(study.tests) == 2 * 6 * 6  # devices x metrics x method pairs
    fronts = study.fronts
    assert set(fronts["method"]) == {"true front", *METHODS}
    steps = anytime_at_steps(study.anytime, K=6)
    assert sorted(steps["evaluated"].unique()) == [24, 30, 36, 42, 48, 54]


def test_study_is_deterministic(study):
    again = nb201_pnas_vs_popnas(datasets=("cifar10",), devices=("lat_gold_6226", "lat_pixel3"), seeds=3, K=6)
    pd.testing.assert_frame_equal(study.scores, again.scores)


def test_study_rejects_bad_settings():
    with pytest.raises(ValueError, match="budgets"):
        nb201_pnas_vs_popnas(budgets=(0.0,))
    with pytest.raises(ValueError, match="methods"):
        nb201_pnas_vs_popnas(methods=("pnas", "bogus"))
    with pytest.raises(ValueError, match="seeds"):
        nb201_pnas_vs_popnas(seeds=[1, 1])
