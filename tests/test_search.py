"""Search strategies: selection rules, PNAS = degenerate POPNAS, baselines, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backends
from harness import CellSpace
from harness.search import (
    PNAS,
    POPNAS,
    RandomSearch,
    RegularizedEvolution,
    SearchResult,
    mutate,
    pareto_front,
    top_k,
)
from tests.conftest import REPO_ROOT

# small predictors keep these tests fast; the search logic is what is under test
FAST_PREDICTOR = {"predictor": "mlp", "predictor_options": {"epochs": 30}}


@pytest.fixture(scope="module")
def small_space():
    return CellSpace.pnas(max_blocks=3)


@pytest.fixture(scope="module")
def surrogate(small_space):
    return backends.make("surrogate", space=small_space)


def brute_force_front(time, acc):
    n = len(time)
    dominated = np.zeros(n, bool)
    for i in range(n):
        for j in range(n):
            if time[j] <= time[i] and acc[j] >= acc[i] and (time[j] < time[i] or acc[j] > acc[i]):
                dominated[i] = True
                break
    return ~dominated


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=0, max_size=60))
def test_pareto_front_matches_brute_force(points):
    # small integer grids force ties in time, in accuracy and exact duplicates
    time = np.array([p[0] for p in points], float)
    acc = np.array([p[1] for p in points], float)
    assert np.array_equal(pareto_front(time, acc), brute_force_front(time, acc))


def test_pareto_front_random_floats():
    rng = np.random.default_rng(0)
    time, acc = rng.random(500), rng.random(500)
    front = pareto_front(time, acc)
    assert np.array_equal(front, brute_force_front(time, acc))
    assert 1 <= front.sum() < 50


def test_pareto_front_rejects_bad_input():
    with pytest.raises(ValueError, match="finite"):
        pareto_front(np.array([1.0, np.nan]), np.array([0.5, 0.6]))


def test_top_k_is_stable():
    assert top_k(np.array([0.2, 0.9, 0.2, 0.9, 0.5]), 3).tolist() == [1, 3, 4]


def _last_bit_noise(values: np.ndarray, seed: int) -> np.ndarray:
    """``values`` moved by a few ulps, as another processor's kernels would compute them."""
    ulps = np.random.default_rng(seed).integers(-8, 9, len(values))
    return values + ulps * np.spacing(values)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_decisions_do_not_depend_on_last_bit_noise(seed):
    """Tied predictions (cells the model cannot tell apart) stay tied when their last bits differ."""
    rng = np.random.default_rng(seed)
    accuracy = rng.choice(rng.uniform(0.3, 0.9, 12), 200)  # 200 candidates, 12 distinct values: many ties
    time = rng.choice(rng.uniform(10.0, 500.0, 9), 200)
    noisy_accuracy, noisy_time = _last_bit_noise(accuracy, seed), _last_bit_noise(time, seed + 1)
    assert top_k(noisy_accuracy, 37).tolist() == top_k(accuracy, 37).tolist()
    assert np.array_equal(pareto_front(noisy_time, noisy_accuracy), pareto_front(time, accuracy))


def test_differences_above_the_grid_still_decide():
    from harness.resolution import ACCURACY_RESOLUTION, TIME_RESOLUTION

    assert top_k(np.array([0.5, 0.5 + 2 * ACCURACY_RESOLUTION]), 1).tolist() == [1]
    assert top_k(np.array([0.5, 0.5 + ACCURACY_RESOLUTION / 10]), 1).tolist() == [0]  # a tie: first wins
    # a candidate faster by two grid steps and as accurate dominates; by a tenth of a step it is a tie
    assert pareto_front(np.array([1.0, 1.0 - 2 * TIME_RESOLUTION]), np.array([0.5, 0.5])).tolist() == [False, True]
    assert pareto_front(np.array([1.0, 1.0 - TIME_RESOLUTION / 10]), np.array([0.5, 0.5])).tolist() == [True, True]


def test_popnas_without_limit_and_front_makes_pnas_decisions(small_space, surrogate):
    pnas = PNAS(small_space, surrogate, K=16, seed=3, **FAST_PREDICTOR).run()
    popnas = POPNAS(small_space, surrogate, K=16, seed=3, time_limit=None, pareto=False,
                    **FAST_PREDICTOR).run()
    real = popnas.trained[popnas.trained["blocks"] > 0]
    assert (popnas.trained["blocks"] == 0).sum() == 1  # the initial-thrust row
    for step in (1, 2, 3):
        assert pnas.trained[pnas.trained["step"] == step]["cell"].tolist() == \
            real[real["step"] == step]["cell"].tolist()


def test_popnas_front_and_time_limit(small_space, surrogate):
    result = POPNAS(small_space, surrogate, K=16, seed=0, time_limit=60.0, **FAST_PREDICTOR).run()
    later = result.trained[result.trained["step"] > 1]
    assert (later["predicted_time"] <= 60.0).all()
    for step, front in result.pareto.groupby("step"):
        # the trained cells of a step are front cells, the most accurate of the front by prediction
        chosen = set(later.loc[later["step"] == step, "cell"])
        assert chosen == set(front.loc[front["selected"], "cell"])
        assert len(chosen) == min(16, len(front))
        assert pareto_front(front["predicted_time"].to_numpy(), front["predicted_accuracy"].to_numpy()).all()
    summary = result.candidates.set_index("step")
    assert (summary["pareto_front"] <= summary["within_time_limit"]).all()
    assert (summary["within_time_limit"] <= summary["candidates"]).all()


def test_pnas_steps_and_tables(small_space, surrogate):
    result = PNAS(small_space, surrogate, K=16, seed=1, **FAST_PREDICTOR).run()
    assert result.trained.groupby("step").size().tolist() == [136, 16, 16]
    assert result.trained.groupby("step")["blocks"].max().tolist() == [1, 2, 3]
    assert {"step", "cell", "accuracy", "train_time", "predicted_accuracy"} <= set(result.trained.columns)
    # step-3 cells are children of step-2 cells
    parents = set(result.trained.query("step == 2")["cell"])
    children = result.trained.query("step == 3")["cell"]
    assert all(any(c.startswith(p) for p in parents) for c in children)
    assert result.best()["accuracy"] == result.trained["accuracy"].max()
    curve = result.top_m_curve()
    assert curve.query("M == 1")["models_trained"].tolist() == [136, 152, 168]


def test_random_search_budget_and_distinct(small_space, surrogate):
    result = RandomSearch(small_space, surrogate, K=20, seed=0).run()
    assert result.trained.groupby("step").size().tolist() == [136, 20, 20]
    assert (result.trained["blocks"] == 3).all()
    assert result.trained["cell"].is_unique


def test_mutation_changes_exactly_one_field(small_space):
    rng = np.random.default_rng(0)
    parents = small_space.sample(2000, 3, seed=0)
    children = mutate(small_space, parents, rng)
    small_space.validate(children)
    changed = (small_space.keys(children) != small_space.keys(parents))
    assert changed.all()
    lookback_one = CellSpace.pnas(max_blocks=2, lookback=1)
    kids = mutate(lookback_one, lookback_one.sample(300, 1, seed=1, replace=True), rng)
    lookback_one.validate(kids)


def test_regularized_evolution_ages_population(small_space, surrogate):
    result = RegularizedEvolution(small_space, surrogate, K=10, seed=0, population_size=30,
                                  sample_size=5).run()
    assert result.trained.groupby("step").size().tolist() == [30, 10, 10]
    step3 = result.trained.query("step == 3")
    # parents of step 3 come from the 30 most recent cells: step 1's last 20 and step 2's 10
    population = set(result.trained.iloc[10:40]["cell"])
    assert set(step3["parent"]) <= population
    assert not set(step3["parent"]) & set(result.trained.iloc[:10]["cell"]) - population


def test_identical_seeds_identical_searches(small_space, surrogate):
    a = POPNAS(small_space, surrogate, K=8, seed=5, **FAST_PREDICTOR).run().trained
    b = POPNAS(small_space, surrogate, K=8, seed=5, **FAST_PREDICTOR).run().trained
    pd.testing.assert_frame_equal(a, b)


def test_resume_refuses_other_settings(tmp_path, small_space, surrogate):
    RandomSearch(small_space, surrogate, K=8, seed=0).run(tmp_path)
    with pytest.raises(ValueError, match="other settings"):
        RandomSearch(small_space, surrogate, K=9, seed=0).run(tmp_path)


RESUMABLE_RUN = textwrap.dedent("""
    import sys, time
    import backends
    from backends.surrogate import SurrogateBackend
    from harness import CellSpace
    from harness.search import POPNAS

    class SlowSurrogate(SurrogateBackend):
        name = "surrogate"
        def _evaluate(self, cells, epochs, seed):
            time.sleep(0.02 * len(cells))  # a stand-in for training, so a kill lands mid-step
            return super()._evaluate(cells, epochs, seed)

    space = CellSpace.pnas(max_blocks=3)
    backend = SlowSurrogate(space=space) if sys.argv[2] == "slow" else backends.make("surrogate", space=space)
    result = POPNAS(space, backend, K=12, seed=7, eval_chunk=4, predictor="mlp",
                    predictor_options={"epochs": 30}).run(sys.argv[1])
    from harness.store import atomic_write_frame
    for name in ("trained.csv", "trained.parquet"):  # what the search experiment writes
        atomic_write_frame(result.trained, f"{sys.argv[1]}/{name}")
""")


def _run_script(folder, mode):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-c", RESUMABLE_RUN, str(folder), mode], env=env)


def _kill_after_parts(folder, parts: int) -> None:
    """Run the resumable search in ``folder`` (slowly) and SIGKILL it once it stored ``parts`` chunks."""
    proc = _run_script(folder, "slow")
    deadline = time.time() + 120
    while time.time() < deadline:
        found = sorted((folder / "evaluations").glob("part-*.parquet")) if (folder / "evaluations").exists() else []
        if len(found) >= parts:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_resume_after_kill_gives_identical_tables(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    _kill_after_parts(killed, 37)  # step 1 = 137 cells in 35 chunks, then two chunks of step 2
    before = pd.read_parquet(killed / "evaluations")
    assert before["step"].max() == 2 and not (killed / "steps" / "step=02").exists()
    assert _run_script(killed, "fast").wait() == 0
    assert _run_script(clean, "fast").wait() == 0

    resumed, uninterrupted = SearchResult.load(killed), SearchResult.load(clean)
    for name in ("trained", "candidates", "predictions", "pareto"):
        pd.testing.assert_frame_equal(getattr(resumed, name).drop(columns=["git_commit"], errors="ignore"),
                                      getattr(uninterrupted, name).drop(columns=["git_commit"], errors="ignore"))
    evaluations = pd.read_parquet(killed / "evaluations")
    # nothing measured before the kill is lost or measured twice
    assert not evaluations.duplicated(["step", "cell"]).any()
    kept = evaluations.merge(before[["step", "cell", "accuracy"]], on=["step", "cell"], suffixes=("", "_before"))
    assert len(kept) == len(before)


@pytest.mark.slow
def test_resume_after_kill_in_step_1_writes_identical_files(tmp_path):
    """Integer columns stay integers whether step 1 ran in one go or was resumed: same bytes."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    _kill_after_parts(killed, 10)
    assert not (killed / "progress.json").exists() and len(pd.read_parquet(killed / "evaluations")) >= 40
    assert _run_script(killed, "fast").wait() == 0
    assert _run_script(clean, "fast").wait() == 0
    for name in ("steps/step=01/trained.parquet", "steps/step=02/trained.parquet", "trained.parquet",
                 "trained.csv"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes(), name
    trained = pd.read_parquet(clean / "trained.parquet")
    assert all(trained[c].dtype == np.int64 for c in ("step", "blocks", "epochs", "seed"))


def test_search_result_load_reads_back_what_the_run_returned(tmp_path, small_space, surrogate):
    ran = POPNAS(small_space, surrogate, K=8, seed=2, **FAST_PREDICTOR).run(tmp_path / "popnas")
    loaded = SearchResult.load(tmp_path / "popnas")
    assert loaded.strategy == "popnas" and loaded.output_dir == tmp_path / "popnas"
    for name in ("trained", "candidates", "predictions", "pareto", "drift"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(ran, name))
    with pytest.raises(FileNotFoundError, match="holds no search"):
        SearchResult.load(tmp_path / "nothing")
