"""The noisy-Rastrigin surrogate: protocol columns, tau calibration, fidelity, time model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import backends
from backends import PROVENANCE_COLUMNS, RESULT_COLUMNS
from backends.surrogate import NB101_TAU_LOW_FIDELITY, NB101_TAU_RETRAIN
from harness import CellBatch
from harness.noise import kendall_tau


def reference_cells(space, per_block_count=4000, seed=11):
    """Fresh uniform cells of every block count (not the surrogate's own reference sample)."""
    return CellBatch.concat([
        space.sample(min(per_block_count, space.num_unique_cells(b)), b, seed=[seed, b])
        for b in range(1, space.max_blocks + 1)
    ])


@pytest.fixture(scope="module")
def surrogate():
    return backends.make("surrogate")


@pytest.fixture(scope="module")
def cells(surrogate):
    return reference_cells(surrogate.space)


def test_protocol_columns(surrogate):
    cells = surrogate.space.sample(5, 3, seed=0)
    frame = surrogate.evaluate(cells, epochs=4, seed=2)
    assert list(frame.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(PROVENANCE_COLUMNS) <= set(frame.columns)
    assert {"accuracy_clean", "train_time_clean"} <= set(frame.columns)
    assert frame["cell"].tolist() == surrogate.space.format(cells)
    assert (frame["blocks"] == 3).all() and (frame["epochs"] == 4).all() and (frame["seed"] == 2).all()
    assert (frame["backend"] == "surrogate").all()
    assert json.loads(frame["backend_options"][0])["tau"] == surrogate.tau
    assert frame["accuracy"].between(0, 1).all() and (frame["train_time"] > 0).all()


def test_accepts_texts(surrogate):
    texts = ["(-1,sep3x3,-2,identity)", "(-2,identity,-1,sep3x3)(0,maxpool3x3,-1,sep5x5)"]
    by_text = surrogate.evaluate(texts)
    by_batch = surrogate.evaluate(surrogate.space.batch(texts))
    assert np.array_equal(by_text["accuracy"], by_batch["accuracy"])


@pytest.mark.parametrize("tau", [0.65, 0.75, 0.85, 0.95])
def test_tau_calibration(tau, cells):
    backend = backends.make("surrogate", tau=tau)
    frame = backend.evaluate(cells, seed=3)
    assert kendall_tau(frame["accuracy"], frame["accuracy_clean"]) == pytest.approx(tau, abs=0.01)


def test_time_tau_calibration(cells):
    backend = backends.make("surrogate", time_tau=0.9)
    frame = backend.evaluate(cells, seed=0)
    assert kendall_tau(frame["train_time"], frame["train_time_clean"]) == pytest.approx(0.9, abs=0.01)


def test_same_seed_same_rows_other_seed_other_noise(surrogate, cells):
    a = surrogate.evaluate(cells, seed=5)
    b = backends.make("surrogate").evaluate(cells, seed=5)
    c = surrogate.evaluate(cells, seed=6)
    assert a.drop(columns="git_commit").equals(b.drop(columns="git_commit"))
    assert not np.allclose(a["accuracy"], c["accuracy"])
    assert np.array_equal(a["accuracy_clean"], c["accuracy_clean"])


def test_result_of_a_cell_does_not_depend_on_its_batch(surrogate, cells):
    whole = surrogate.evaluate(cells, seed=1)
    part = surrogate.evaluate(cells.take(slice(100, 110)), seed=1)
    assert np.array_equal(whole["accuracy"].to_numpy()[100:110], part["accuracy"].to_numpy())
    assert np.array_equal(whole["train_time"].to_numpy()[100:110], part["train_time"].to_numpy())


def test_retraining_ceiling_and_fidelity_curve(surrogate, cells):
    full_a = surrogate.evaluate(cells, seed=0)
    full_b = surrogate.evaluate(cells, seed=1)
    ceiling = kendall_tau(full_a["accuracy"], full_b["accuracy"])
    assert ceiling < 1.0
    # the default tau is anchored so that re-training agrees like NAS-Bench-101's two runs
    assert ceiling == pytest.approx(NB101_TAU_RETRAIN, abs=0.015)
    taus = [kendall_tau(surrogate.evaluate(cells, epochs=e, seed=0)["accuracy"], full_b["accuracy"])
            for e in (1, 2, 5, 10, 20)]
    assert all(np.diff(taus) > 0), taus
    for e, measured in zip((1, 2, 5, 10, 20), taus):
        assert measured == pytest.approx(surrogate.expected_tau_to_full(e), abs=0.015)


def test_fidelity_anchor_on_nas_bench_101():
    backend = backends.make("surrogate", max_epochs=108)
    assert backend.expected_tau_to_full(36) == pytest.approx(NB101_TAU_LOW_FIDELITY, abs=1e-3)
    assert backend.expected_tau_to_full(108) == pytest.approx(NB101_TAU_RETRAIN, abs=1e-3)


def test_accuracy_level_rises_with_epochs(surrogate, cells):
    means = [surrogate.evaluate(cells, epochs=e)["accuracy"].mean() for e in (1, 5, 20)]
    assert means[0] < means[1] < means[2]


def test_time_model_is_the_fitted_one(surrogate):
    from backends.surrogate import TIME_CONSTANTS
    from backends.time_fit import branch_features, model_times

    space = surrogate.space
    cells = space.batch(["empty", "(-1,sep3x3,-1,sep3x3)", "(-2,sep7x7,-1,identity)(0,avgpool3x3,-2,sep5x5)",
                         "(-2,dilconv3x3,-1,maxpool3x3)(0,conv1x7-7x1,-1,identity)(1,sep5x5,0,sep3x3)"])
    expected = model_times(TIME_CONSTANTS, *branch_features(cells, space)) * surrogate.max_epochs
    np.testing.assert_allclose(surrogate.clean_train_time(cells), expected, rtol=1e-12)
    # one-block cells whose two branches use the same operator cost in the fitted operators' order
    symmetric = space.batch([f"(-1,{op},-1,{op})" for op in space.operator_order])
    times = surrogate.clean_train_time(symmetric)
    fitted = [TIME_CONSTANTS.operator_costs[op] for op in space.operator_order]
    assert np.array_equal(np.argsort(times), np.argsort(fitted))
    empty = surrogate.clean_train_time(space.empty_cells(1))[0]
    assert 0 < empty < times.min()
    # proportional to epochs
    assert np.allclose(surrogate.clean_train_time(symmetric, epochs=5) * 4, times)
    # the defaults say what they were fitted to and how well
    assert {"table", "clock", "rows", "mean_relative_error"} <= set(TIME_CONSTANTS.source)


def _block_sum_deficit(surrogate, b):
    """Mean of real minus block-sum time for random children with ``b`` blocks."""
    space = surrogate.space
    children = space.expand(space.sample(40, b - 1, seed=b)).take(slice(0, None, 37))
    parents = children.blocks.copy()
    parents[:, b - 1] = -128
    parent_time = surrogate.clean_train_time(CellBatch(parents, children.num_blocks - 1))
    # the new block read as a one-block cell: inputs from earlier blocks become the previous cell
    last = children.blocks[:, b - 1].copy()
    last[:, [0, 2]] = np.where(last[:, [0, 2]] >= 0, -1, last[:, [0, 2]])
    one = np.full_like(children.blocks, -128)
    one[:, 0] = last
    one_time = surrogate.clean_train_time(CellBatch(one, np.ones(len(children), np.int8)))
    return float(np.mean(surrogate.clean_train_time(children) - parent_time - one_time))


@pytest.mark.parametrize("growth", [0.12, -0.1])
def test_block_sum_error_follows_the_growth(growth):
    """Positive growth: adding a block costs more than the block alone, more so in larger cells
    (POPNAS 4.1.1), so block sum underestimates; negative growth: it overestimates."""
    surrogate = backends.make("surrogate", time_growth=growth)
    deficits = np.array([_block_sum_deficit(surrogate, b) for b in (3, 4, 5)]) * np.sign(growth)
    assert 0 < deficits[0] < deficits[1] < deficits[2]


def test_every_part_of_a_cell_matters(surrogate):
    base = "(-2,sep3x3,-1,identity)(0,sep5x5,-1,maxpool3x3)"
    variants = [
        "(-2,sep3x3,-1,identity)(0,sep7x7,-1,maxpool3x3)",  # operator
        "(-2,sep3x3,-1,identity)(-2,sep5x5,-1,maxpool3x3)",  # input
        "(-2,sep3x3,-1,identity)",  # block count
        "(0,sep5x5,-1,maxpool3x3)(-2,sep3x3,-1,identity)".replace("(0,", "(-1,", 1),  # order
    ]
    acc = surrogate.clean_accuracy(surrogate.space.batch([base, *variants]))
    assert len(np.unique(acc)) == len(acc)


def _mutations(space, cell_blocks, b):
    """All cells that differ from ``cell_blocks`` in exactly one block (same block count)."""
    out = []
    for j in range(b):
        table = space.block_structures(j + 1)
        arr = np.repeat(cell_blocks[None], len(table), axis=0)
        arr[:, j] = table
        out.append(arr)
    arr = np.concatenate(out)
    return CellBatch(arr, np.full(len(arr), b, np.int8))


def test_landscape_is_multimodal(surrogate):
    """Greedy one-block-mutation hill climbing from random starts ends in several local optima."""
    space = surrogate.space
    optima = set()
    for start in space.sample(12, 2, seed=9):
        blocks = space.batch([start]).blocks[0]
        value = surrogate.clean_accuracy(CellBatch(blocks[None], np.array([2], np.int8)))[0]
        while True:
            neighbours = _mutations(space, blocks, 2)
            scores = surrogate.clean_accuracy(neighbours)
            best = int(np.argmax(scores))
            if scores[best] <= value:
                break
            blocks, value = neighbours.blocks[best].copy(), scores[best]
        optima.add(space.format(CellBatch(blocks[None], np.array([2], np.int8)))[0])
    assert len(optima) >= 3


@pytest.mark.parametrize(
    "kwargs, message",
    [({"tau": 0.0}, "tau must be a real number in"), ({"tau": 1.5}, "tau must be a real number in"),
     ({"tau": True}, r"tau must be a real number in \(0, 1\], got True"), ({"tau": "0.8"}, "got '0.8'"),
     ({"time_tau": -1}, "time_tau"), ({"max_epochs": 0}, "max_epochs"),
     ({"space": "darts"}, "unknown space 'darts'")],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        backends.make("surrogate", **kwargs)


def test_bad_evaluate_arguments(surrogate):
    cells = surrogate.space.sample(2, 1, seed=0)
    with pytest.raises(ValueError, match="epochs=21 is outside 1..20"):
        surrogate.evaluate(cells, epochs=21)
    with pytest.raises(ValueError, match="seed must be"):
        surrogate.evaluate(cells, seed=-1)
    with pytest.raises(ValueError, match="unknown operator 'conv9'"):
        surrogate.evaluate(["(-1,conv9,-1,identity)"])
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        backends.make("nope")
