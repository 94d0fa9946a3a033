"""POPNAS's front rules (strict, the v1 code's sweep, layered), the v1 quirks and the POPNAS.v1 preset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backends
from ablations.search_comparisons import REFERENCED_SPEED_UP, popnas_fronts, popnas_table8, popnas_time_limit
from harness import CellSpace
from harness.encodings import TruncatedPredictionFeatures
from harness.regressors import NNLSRegressor
from harness.search import (
    POPNAS,
    POPNAS_V1,
    default_time_regressor,
    front_mask,
    layered_front,
    pareto_front,
    top_k,
    v1_front,
)


def v1_loop(time, accuracy):
    """A direct transcription of the POPNAS v1 loop (encoder.py, ControllerManager.update_step)."""
    models_scores = [[i, accuracy[i], time[i]] for i in range(len(time))]
    models_scores = sorted(models_scores, key=lambda x: x[1], reverse=True)
    pareto = [models_scores[0]]
    for pair in models_scores[1:]:
        if pair[2] <= pareto[-1][2]:
            pareto.append(pair)
    mask = np.zeros(len(time), bool)
    mask[[row[0] for row in pareto]] = True
    return mask, [row[0] for row in pareto]


# ---------------------------------------------------------------------------- hand-made cases with ties
# candidate:       0     1     2     3     4     5
TIME = np.array([3.0, 3.0, 2.0, 2.0, 5.0, 1.0])
ACC = np.array([0.9, 0.8, 0.8, 0.7, 0.95, 0.7])


def test_strict_front_with_ties():
    # 1 ties 0 in time and is less accurate: dominated; 3 ties 2 in time: dominated;
    # 5 ties 3 in accuracy and is faster, so it dominates 3 as well, and stays
    assert pareto_front(TIME, ACC).tolist() == [True, False, True, False, True, True]


def test_v1_front_keeps_time_ties():
    # ranked by accuracy: 4 (t5), 0 (t3), 1 (t3), 2 (t2), 3 (t2), 5 (t1); every time is <= the last kept
    assert v1_front(TIME, ACC).tolist() == [True] * 6
    # a faster child ranked in between cuts the tie: 1 (t3) comes after 2 (t2) now
    acc = np.array([0.9, 0.7, 0.8, 0.6, 0.95, 0.5])
    assert v1_front(TIME, acc).tolist() == [True, False, True, True, True, True]


def test_v1_front_equal_accuracies_keep_candidate_order():
    # all equally accurate: ranked in candidate order, so the slower 1 after the faster 0 is dropped
    # while the slower 0 before the faster 1 would be kept
    assert v1_front(np.array([1.0, 2.0, 1.0]), np.array([0.5, 0.5, 0.5])).tolist() == [True, False, True]
    assert v1_front(np.array([2.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.5])).tolist() == [True, True, True]
    # the strict front keeps only the fastest of equal accuracies (both copies of an exact duplicate)
    assert pareto_front(np.array([2.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.5])).tolist() == [False, True, True]


def test_layered_front_adds_whole_layers_until_k():
    # layer 1: {0, 2, 4, 5}; layer 2: {1, 3}
    assert layered_front(TIME, ACC, 3).tolist() == [True, False, True, False, True, True]
    assert layered_front(TIME, ACC, 5).tolist() == [True] * 6
    assert layered_front(TIME, ACC, 100).tolist() == [True] * 6
    assert layered_front(np.zeros(0), np.zeros(0), 3).tolist() == []


def test_front_mask_dispatch_and_errors():
    for rule, rule_fn in (("strict", pareto_front), ("v1", v1_front)):
        assert np.array_equal(front_mask(rule, TIME, ACC, 2), rule_fn(TIME, ACC))
    assert np.array_equal(front_mask("layered", TIME, ACC, 5), layered_front(TIME, ACC, 5))
    with pytest.raises(ValueError, match="unknown front rule 'pareto'"):
        front_mask("pareto", TIME, ACC, 2)
    with pytest.raises(ValueError, match="finite"):
        v1_front(np.array([1.0, np.inf]), np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        layered_front(TIME, ACC, 0)
    assert v1_front(np.zeros(0), np.zeros(0)).tolist() == []


# ---------------------------------------------------------------------------- v1 rule == the v1 loop
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=50))
def test_v1_front_equals_the_v1_loop_on_tied_grids(points):
    # small integer grids force ties in time, in accuracy and exact duplicates
    time = np.array([p[0] for p in points], float)
    acc = np.array([p[1] for p in points], float)
    expected, kept_order = v1_loop(time, acc)
    mask = v1_front(time, acc)
    assert np.array_equal(mask, expected)
    # and POPNAS's pick from it (the top K by accuracy, ties in candidate order) is the loop's first K
    pool = np.flatnonzero(mask)
    assert pool[top_k(acc[pool], 5)].tolist() == kept_order[:5]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e3), st.floats(0, 1)), min_size=1, max_size=80))
def test_v1_front_equals_the_v1_loop_on_floats(points):
    """On floats the rule decides on the grid (harness.search.pareto): the loop run on the gridded values."""
    from harness.resolution import ACCURACY_RESOLUTION, TIME_RESOLUTION, quantize

    time = np.array([p[0] for p in points])
    acc = np.array([p[1] for p in points])
    gridded = v1_loop(quantize(time, TIME_RESOLUTION), quantize(acc, ACCURACY_RESOLUTION))[0]
    assert np.array_equal(v1_front(time, acc), gridded)


def test_v1_front_contains_the_strict_front():
    # a non-dominated candidate has nothing more accurate and strictly faster, so the sweep keeps it
    rng = np.random.default_rng(0)
    time, acc = rng.integers(0, 20, 2000).astype(float), rng.random(2000)
    assert not (pareto_front(time, acc) & ~v1_front(time, acc)).any()


# ---------------------------------------------------------------------------- integer time features
def test_truncated_prediction_features_fit_on_reals_predict_on_integers():
    rng = np.random.default_rng(1)
    X = rng.random((40, 3)) * 8
    y = X @ np.array([1.0, 2.0, 0.5]) + 3
    model = TruncatedPredictionFeatures(NNLSRegressor()).fit(X, y)
    plain = NNLSRegressor().fit(X, y)
    np.testing.assert_allclose(model.regressor_.coef_, plain.coef_)  # training rows are not cast
    np.testing.assert_allclose(model.predict(X), plain.predict(np.floor(X)))


def test_integer_time_features_give_tied_predicted_times():
    """The quirk's mechanism: children whose re-indexed operators truncate alike get one predicted time."""
    space = CellSpace.pnas(max_blocks=3)
    backend = backends.make("surrogate", space=space)
    cells = space.initial_cells()
    trained = backend.evaluate(cells, None, 0)
    X, y = space.to_matrix(cells), trained["train_time"].to_numpy()
    children = space.to_matrix(space.expand(cells))
    real = default_time_regressor(space).fit(X, y).predict(children)
    integer = default_time_regressor(space, integer_features=True).fit(X, y).predict(children)
    # 40,800 two-block children: without inputs the features are the 4 operators' values; the
    # truncation maps the 8 operators onto fewer integers, so far fewer distinct times remain
    assert len(children) == 40_800
    assert len(np.unique(integer)) < len(np.unique(real)) / 4


# ---------------------------------------------------------------------------- the v1 preset on the surrogate
@pytest.fixture(scope="module")
def strict_and_v1():
    space = CellSpace.pnas(max_blocks=3)
    backend = backends.make("surrogate", space=space)
    predictor = {"epochs": 20, "output_bias": None}
    strict = POPNAS(space, backend, K=32, seed=0, predictor="lstm", predictor_options=predictor).run()
    v1 = POPNAS.v1(space, backend, K=32, seed=0, predictor_options=predictor).run()
    return strict, v1


def test_v1_preset_settings():
    space = CellSpace.pnas(max_blocks=3)
    search = POPNAS.v1(space, backends.make("surrogate", space=space), K=8)
    assert (search.front, search.integer_time_features, search.predictor, search.time_limit) == \
        ("v1", True, "lstm", None)
    assert {k: search.settings()[k] for k in POPNAS_V1} == POPNAS_V1
    with pytest.raises(ValueError, match="front must be one of"):
        POPNAS(space, backends.make("surrogate", space=space), front="pareto")
    with pytest.raises(ValueError, match="integer_time_features truncates the default"):
        POPNAS(space, backends.make("surrogate", space=space), integer_time_features=True,
               time_regressor=NNLSRegressor())


def test_v1_front_holds_far_more_cells_than_the_strict_one(strict_and_v1):
    """Same predictor (LSTM), same surrogate: only the front rule and the integer features differ.

    Measured (2-core CPU, B = 3, K = 32): fronts of 14 (strict) and 90 (v1) cells at step 2 of
    40,800 children, 14 and 100 at step 3. The strict front keeps at most one time group's best
    per distinct predicted time; v1 keeps every child tied in predicted time with a kept one. Ties
    are common: without inputs the NNLS sees only the block count and operators (cells differing
    in inputs alone get one time), and the integer truncation merges operators further (562
    distinct predicted times among the 40,800 step-2 children of the v1 run).
    """
    strict, v1 = strict_and_v1
    s = strict.candidates.set_index("step")["pareto_front"]
    v = v1.candidates.set_index("step")["pareto_front"]
    assert (v >= 5 * s).all()
    # so the v1 front fills K while the strict one trains fewer
    assert (v > 32).all() and (s < 32).all()
    # the strict run trains its whole front; the v1 run fills K from its front
    trained = v1.trained[v1.trained["blocks"] > 0].groupby("step").size()
    assert trained.loc[3] == 32
    assert (strict.trained[strict.trained["step"] > 1].groupby("step").size() == s).all()
    # the trained cells are the top K of the front by predicted accuracy (the predictions table
    # keeps every front cell, also where it samples the rest) ...
    for step in (2, 3):
        rows = v1.predictions[v1.predictions["step"] == step]
        front = rows[rows["on_front"]].reset_index(drop=True)
        assert len(front) == v.loc[step]
        picked = front.loc[top_k(front["predicted_accuracy"].to_numpy(), 32), "cell"]
        assert set(picked) == set(v1.trained.query("step == @step")["cell"])
    # ... and the front is the v1 rule on all of step 3's children (16,896: kept in full)
    rows = v1.predictions[v1.predictions["step"] == 3]
    assert not rows["sampled"].any()
    mask = v1_front(rows["predicted_time"].to_numpy(), rows["predicted_accuracy"].to_numpy())
    assert np.array_equal(mask, rows["on_front"].to_numpy())


def test_hydra_preset_builds_the_v1_preset():
    from harness.app.config import structured
    from harness.app.experiments import build_backend, build_search, build_space
    from harness.app.sweep import job_config
    from tests.test_config import compose_job

    cfg = structured(job_config(compose_job("experiment=search", "search=popnas_v1", "experiment.space.max_blocks=3")))
    space = build_space(cfg.experiment.space)
    search = build_search(cfg.search, cfg.predictor, space, build_backend(cfg.backend, space), seed=0)
    assert isinstance(search, POPNAS)
    assert {k: search.settings()[k] for k in POPNAS_V1} == POPNAS_V1
    assert repr(search.time_regressor) == repr(default_time_regressor(space, integer_features=True))


# ---------------------------------------------------------------------------- study tables
def _trained(steps: dict[int, list[tuple[float, float]]]) -> pd.DataFrame:
    rows = [{"step": s, "cell": f"c{s}-{i}", "blocks": s, "accuracy": a, "train_time": t}
            for s, cells in steps.items() for i, (a, t) in enumerate(cells)]
    return pd.DataFrame(rows)


def test_table8_compares_every_front_with_pnas():
    pnas = _trained({1: [(0.5, 60.0)], 2: [(0.8, 120.0), (0.6, 120.0)]})
    strict = _trained({1: [(0.5, 60.0)], 2: [(0.6, 30.0)]})
    v1 = _trained({1: [(0.5, 60.0)], 2: [(0.7, 60.0), (0.5, 60.0)]})
    table = popnas_table8(pnas, {"strict": strict, "v1": v1}).set_index(["quantity", "front"])["value"]
    speedup = "speed-up of POPNAS over PNAS (training time)"
    assert table[(speedup, "strict")] == pytest.approx(300 / 90)
    assert table[(speedup, "v1")] == pytest.approx(300 / 180)
    assert table[("speed-up of POPNAS over PNAS at the last step (training time)", "v1")] == pytest.approx(2.0)
    assert table[("best cell accuracy, change versus PNAS [%]", "v1")] == pytest.approx(100 * (0.7 / 0.8 - 1))
    last = "mean accuracy of the last step's cells, change versus PNAS [%]"
    assert table[(last, "strict")] == pytest.approx(100 * (0.6 / 0.7 - 1))
    # the same speed-up in units of each run's step-1 time (the same cell, the same time here)
    assert table[(REFERENCED_SPEED_UP, "v1")] == pytest.approx(300 / 180)
    # v1 recorded on a machine running twice as fast: its plain speed-up doubles, the referenced one does not
    fast = popnas_table8(pnas, {"v1": v1.assign(train_time=v1["train_time"] / 2)}).set_index("quantity")["value"]
    assert fast[speedup] == pytest.approx(2 * 300 / 180)
    assert fast[REFERENCED_SPEED_UP] == pytest.approx(300 / 180)
    # one run is the strict front, as before
    assert popnas_table8(pnas, strict)["front"].tolist().count("strict") > 0


def test_fronts_table_knows_the_front_size_of_steps_below_k():
    popnas = _trained({1: [(0.5, 1.0)] * 3, 2: [(0.6, 1.0)] * 2, 3: [(0.6, 1.0)] * 4})
    summary = pd.DataFrame({"step": [2], "candidates": [50], "within_time_limit": [40], "pareto_front": [9]})
    table = popnas_fronts({("popnas", "v1"): (popnas, summary), ("popnas", "strict"): (popnas, None)}, K=4)
    value = table.set_index(["front", "step", "quantity"])["value"]
    assert value[("v1", 2, "front size")] == 9 and value[("v1", 2, "candidates")] == 50
    # without a summary: step 2 trained 2 < K cells, its whole front; step 3 trained K, front unknown
    assert value[("strict", 2, "front size")] == 2
    assert ("strict", 3, "front size") not in value.index
    assert value[("strict", 3, "cells trained")] == 4


def test_time_limit_table():
    runs = {("pnas", None, None): _trained({1: [(0.5, 60.0)], 2: [(0.8, 120.0)]}),
            ("pnas", 0.5, 100.0): _trained({1: [(0.5, 60.0)], 2: [(0.6, 90.0)]})}
    table = popnas_time_limit(runs)
    assert table["search training time [min]"].tolist() == [3.0, 2.5]
    assert table["best cell accuracy"].tolist() == [0.8, 0.6]
    assert np.isnan(table["time_limit"].iloc[0]) and table["time_limit"].iloc[1] == 100.0


def test_speed_up_explanation_reads_its_numbers_from_the_tables():
    import pandas as pd

    from ablations.search_comparisons import LAST_STEP_CHANGE, REFERENCED_SPEED_UP, speed_up_explanation

    fronts = pd.DataFrame([
        {"source": "surrogate", "search": "pnas", "front": "-", "step": step, "quantity": "cells trained",
         "value": 256.0} for step in (1, 2, 3)] + [
        {"source": "surrogate", "search": "popnas", "front": "v1", "step": step, "quantity": quantity,
         "value": value} for step, quantity, value in ((2, "cells trained", 256.0), (3, "cells trained", 200.0),
                                                       (2, "front size", 400.0), (3, "front size", 200.0))])
    table8 = pd.DataFrame([
        {"source": "surrogate", "search": "popnas", "front": "v1", "quantity": quantity, "value": value}
        for quantity, value in (("speed-up of POPNAS over PNAS (training time)", 2.04), (REFERENCED_SPEED_UP, 1.4),
                                ("best cell accuracy, change versus PNAS [%]", -1.5), (LAST_STEP_CHANGE, -13.0))])
    assert speed_up_explanation(table8, fronts) == (
        "surrogate, v1 front: its front held 300 children on average, so it trained 228.0 cells per step after "
        "the first against PNAS's 256.0; total training time 2.04x shorter (1.40x in units of each run's step-1 "
        "time), best cell -1.5 %, last step's mean "
        "accuracy -13.0 %.")
