"""Record and replay: a recorded run served by the table backend gives the same values and decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import backends
from backends.recording import RecordingBackend, record
from backends.table import TableBackend
from harness.space import CellBatch, CellSpace
from harness.store import ResultsStore

SPACE = CellSpace.pnas(max_blocks=3)


@pytest.fixture(scope="module")
def surrogate():
    return backends.make("surrogate", max_blocks=3)


def search(backend, keep: int = 4, children: int = 60) -> tuple[list[list[str]], pd.DataFrame]:
    """A PNAS-like loop: evaluate, keep the top cells by accuracy, expand them, evaluate a subset."""
    cells = SPACE.initial_cells()
    decisions, frames = [], []
    for step in range(SPACE.max_blocks):
        frame = backend.evaluate(cells, seed=step)
        frames.append(frame)
        top = np.argsort(-frame["accuracy"].to_numpy(), kind="stable")[:keep]
        decisions.append(frame["cell"].iloc[top].tolist())
        if step + 1 < SPACE.max_blocks:
            expanded = SPACE.expand(cells.take(top))
            cells = expanded.take(np.random.default_rng(step).choice(len(expanded), children, replace=False))
    return decisions, pd.concat(frames, ignore_index=True)


def test_recorder_returns_the_wrapped_backends_frames(surrogate, tmp_path):
    recorder = record(surrogate, tmp_path / "run")
    assert isinstance(recorder, RecordingBackend) and recorder.space == surrogate.space
    cells = SPACE.sample(20, 2, seed=0)
    pd.testing.assert_frame_equal(recorder.evaluate(cells, epochs=5, seed=3),
                                  surrogate.evaluate(cells, epochs=5, seed=3))
    assert recorder.options() == surrogate.options()


def test_every_evaluation_is_appended_as_one_part(surrogate, tmp_path):
    recorder = record(surrogate, tmp_path / "run")
    first = recorder.evaluate(SPACE.sample(7, 1, seed=0))
    second = recorder.evaluate(SPACE.sample(5, 3, seed=1), epochs=4, seed=2)
    with pytest.raises(ValueError):
        recorder.evaluate(["(-1,sep3x3,-1,nonsense)"])  # a failed evaluation records nothing
    store = ResultsStore(tmp_path / "run")
    assert len(store.parts()) == 2
    pd.testing.assert_frame_equal(store.read(), pd.concat([first, second], ignore_index=True))


def test_replay_serves_identical_values(surrogate, tmp_path):
    recorder = record(surrogate, tmp_path / "run")
    batches = [
        (SPACE.initial_cells(), None, 0),
        (SPACE.initial_cells().take(slice(0, 30)), None, 1),
        (SPACE.sample(50, 2, seed=4), 5, 0),
        (SPACE.sample(50, 3, seed=5), None, 2),
    ]
    originals = [recorder.evaluate(cells, epochs=epochs, seed=seed) for cells, epochs, seed in batches]
    replay = backends.make("table", path=tmp_path / "run", max_blocks=3)
    for (cells, epochs, seed), original in zip(batches, originals):
        served = replay.evaluate(cells, epochs=epochs, seed=seed)
        assert served["cell"].tolist() == original["cell"].tolist()
        np.testing.assert_array_equal(served["accuracy"], original["accuracy"])
        np.testing.assert_array_equal(served["train_time"], original["train_time"])
        np.testing.assert_array_equal(served["epochs"], original["epochs"])
        np.testing.assert_array_equal(served["accuracy_clean"], original["accuracy_clean"])
        assert (served["source_backend"] == "surrogate").all()
    assert replay.simulated_time == pytest.approx(sum(f["train_time"].sum() for f in originals))


def test_replayed_search_makes_the_same_decisions(surrogate, tmp_path):
    decisions, original = search(record(surrogate, tmp_path / "run"))
    replay = TableBackend(tmp_path / "run", max_blocks=3)
    replayed_decisions, replayed = search(replay)
    assert replayed_decisions == decisions
    assert len({cell for step in decisions for cell in step}) == 4 * SPACE.max_blocks
    np.testing.assert_array_equal(replayed["accuracy"], original["accuracy"])
    np.testing.assert_array_equal(replayed["train_time"], original["train_time"])
    assert replay.simulated_time == pytest.approx(original["train_time"].sum())


def test_replay_of_an_unrecorded_cell_is_missing(surrogate, tmp_path):
    record(surrogate, tmp_path / "run").evaluate(SPACE.initial_cells(), seed=0)
    replay = TableBackend(tmp_path / "run", max_blocks=3)
    unrecorded: CellBatch = SPACE.sample(1, 2, seed=0)
    with pytest.raises(LookupError, match="is not in table"):
        replay.evaluate(unrecorded)
    with pytest.raises(LookupError, match="has no run at epochs=20, seed=1"):
        replay.evaluate(SPACE.initial_cells(), seed=1)


def test_recorder_is_transparent_for_the_wrapped_backends_extras(tmp_path):
    surrogate = backends.make("surrogate")
    recorded = backends.record(surrogate, tmp_path / "rec")
    assert recorded.expected_tau_to_full(5) == surrogate.expected_tau_to_full(5)
    with pytest.raises(AttributeError):
        _ = recorded.no_such_attribute


def test_recorded_evaluations_are_served_not_evaluated_again(tmp_path):
    class Counting(type(backends.make("surrogate", max_blocks=3))):
        evaluated = 0

        def _evaluate(self, cells, epochs, seed):
            Counting.evaluated += len(cells)
            return super()._evaluate(cells, epochs, seed)

    cells = SPACE.sample(30, 2, seed=0)
    first = record(Counting(space=SPACE), tmp_path / "run").evaluate(cells, epochs=5, seed=1)
    assert Counting.evaluated == 30
    # a new recorder on the same table (a rerun): nothing is evaluated or appended again
    again = record(Counting(space=SPACE), tmp_path / "run")
    pd.testing.assert_frame_equal(again.evaluate(cells, epochs=5, seed=1), first)
    assert Counting.evaluated == 30 and len(ResultsStore(tmp_path / "run")) == 30
    # a batch mixing recorded and new cells: only the new ones are evaluated, rows in batch order
    mixed = CellBatch.concat([SPACE.sample(10, 3, seed=1), cells.take(slice(0, 10))])
    served = again.evaluate(mixed.take(np.random.default_rng(0).permutation(20)), epochs=5, seed=1)
    assert Counting.evaluated == 40 and len(ResultsStore(tmp_path / "run")) == 40
    fresh = backends.make("surrogate", max_blocks=3).evaluate(
        mixed.take(np.random.default_rng(0).permutation(20)), epochs=5, seed=1)
    pd.testing.assert_frame_equal(served.drop(columns="git_commit"), fresh.drop(columns="git_commit"))
    # another seed, other epochs or other backend options are other evaluations
    again.evaluate(cells, epochs=5, seed=2)
    again.evaluate(cells, epochs=4, seed=1)
    record(Counting(space=SPACE, tau=0.5), tmp_path / "run").evaluate(cells, epochs=5, seed=1)
    assert Counting.evaluated == 130 and len(ResultsStore(tmp_path / "run")) == 130


def test_recorder_compacts_a_table_of_many_parts_when_it_first_reads_it(surrogate, tmp_path, monkeypatch):
    from backends import recording

    monkeypatch.setattr(recording, "_COMPACT_AT_PARTS", 3)
    recorder = record(surrogate, tmp_path / "run")
    frames = [recorder.evaluate(SPACE.sample(5, 2, seed=s), seed=s) for s in range(4)]
    assert len(ResultsStore(tmp_path / "run").parts()) == 4
    again = record(surrogate, tmp_path / "run")
    pd.testing.assert_frame_equal(again.evaluate(SPACE.sample(5, 2, seed=3), seed=3), frames[3])
    assert len(ResultsStore(tmp_path / "run").parts()) == 1
