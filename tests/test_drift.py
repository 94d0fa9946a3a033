"""The drift monitor: reference cells re-timed every step, drift factors and timing noise."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import backends
from harness import CellSpace
from harness.evaluator import Backend
from harness.search import PNAS
from harness.search.drift import DriftMonitor, drift_summary, pooled_noise, symmetric_one_block_cells

FAST_PREDICTOR = {"predictor": "mlp", "predictor_options": {"epochs": 30}}


class DriftingBackend(Backend):
    """The surrogate, with times multiplied by a machine slowdown that grows with the work done
    (``1 + rate * cells evaluated before this call``) and a seeded 2 % log-normal jitter per row.

    ``factors`` logs, per ``evaluate`` call, its cells and the slowdown applied."""

    name: ClassVar[str] = "drifting"

    def __init__(self, space: CellSpace, rate: float) -> None:
        self.inner = backends.make("surrogate", space=space)
        self.space, self.max_epochs = space, self.inner.max_epochs
        self.rate, self.done = rate, 0
        self.rng = np.random.default_rng(0)
        self.factors: list[tuple[list[str], float]] = []

    def options(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def _evaluate(self, cells, epochs, seed):
        measured = self.inner._evaluate(cells, epochs, seed)
        factor = 1.0 + self.rate * self.done
        self.factors.append((self.space.format(cells), factor))
        self.done += len(cells)
        jitter = np.exp(self.rng.normal(0.0, 0.02, len(cells)))
        return {**measured, "train_time": measured["train_time"] * factor * jitter}


def test_default_reference_cells_are_the_symmetric_one_block_cells():
    space = CellSpace.pnas(max_blocks=3)
    cells = symmetric_one_block_cells(space)
    assert len(cells) == 8 and all(c.startswith("(-1,") for c in cells)
    batch = space.parse_many(cells)
    assert (batch.num_blocks == 1).all()
    assert np.array_equal(batch.blocks[:, 0, 1], batch.blocks[:, 0, 3])
    assert len(set(batch.blocks[:, 0, 1].tolist())) == 8


def test_monitor_recovers_a_known_drift_factor(tmp_path):
    space = CellSpace.pnas(max_blocks=3)
    backend = DriftingBackend(space, rate=0.002)
    monitor = DriftMonitor(repeats=3)
    result = PNAS(space, backend, K=12, seed=1, drift_monitor=monitor, **FAST_PREDICTOR).run(tmp_path)
    reference = set(symmetric_one_block_cells(space))
    # the slowdown in force when each step's reference cells were timed (one call per step)
    true = [factor for cells, factor in backend.factors if set(cells) == reference]
    assert len(true) == 3 and true[2] > 1.3  # drift the monitor must see
    summary = drift_summary(result.drift)
    expected = np.array(true) / true[0]
    np.testing.assert_allclose(summary["drift_factor"], expected, rtol=0.03)
    # the 2 % jitter: |t_a - t_b| / mean of two draws has median about 0.02 * sqrt(2) * 0.67
    assert 0.005 < summary["relative_deviation"].median() < 0.05
    assert (summary["tau"] > 0.6).all()
    noise = pooled_noise(result.drift)
    assert noise["drift_max"] == pytest.approx(expected.max(), rel=0.03)
    # reference timings stay out of the search's own tables and folder of evaluations
    assert len(result.trained) == 136 + 12 + 12
    assert (tmp_path / "drift" / "step=03.parquet").exists()
    assert not pd.read_parquet(tmp_path / "evaluations")["step"].isna().any()


def test_resumed_run_keeps_completed_timings(tmp_path):
    space = CellSpace.pnas(max_blocks=2)
    monitor = DriftMonitor()
    first = PNAS(space, DriftingBackend(space, rate=0.001), K=8, seed=0, drift_monitor=monitor,
                 **FAST_PREDICTOR).run(tmp_path)
    # step 2 lost (as after a kill before it was marked done): only its timings are measured again
    (tmp_path / "drift" / "step=02.parquet").unlink()
    (tmp_path / "progress.json").write_text('{"completed_steps": 1}')
    again = DriftingBackend(space, rate=0.001)
    second = PNAS(space, again, K=8, seed=0, drift_monitor=monitor, **FAST_PREDICTOR).run(tmp_path)
    pd.testing.assert_frame_equal(first.drift[first.drift.step == 1], second.drift[second.drift.step == 1])
    assert len(again.factors[0][0]) == 16 and (second.drift["step"] == 2).sum() == 16
    # a run without a monitor cannot resume a folder made with one (settings differ)
    with pytest.raises(ValueError, match="drift_monitor"):
        PNAS(space, DriftingBackend(space, rate=0.001), K=8, seed=0, **FAST_PREDICTOR).run(tmp_path)


def test_deterministic_backend_has_no_drift_and_no_noise():
    space = CellSpace.pnas(max_blocks=2)
    result = PNAS(space, backends.make("surrogate", space=space), K=8, drift_monitor=DriftMonitor(),
                  **FAST_PREDICTOR).run()
    summary = drift_summary(result.drift)
    assert (summary["drift_factor"] == 1.0).all() and (summary["relative_deviation"] == 0).all()
    np.testing.assert_allclose(summary["tau"], 1.0)


def test_bad_monitor_settings_are_refused():
    with pytest.raises(ValueError, match="repeats must be an integer >= 2, got 1"):
        DriftMonitor(repeats=1)
    with pytest.raises(ValueError, match="at least 2 reference cells"):
        DriftMonitor(cells=("(-1,sep3x3,-1,sep3x3)",))
    space = CellSpace.pnas(max_blocks=2)
    with pytest.raises(ValueError, match="unknown operator"):
        PNAS(space, backends.make("surrogate", space=space), drift_monitor=DriftMonitor(cells=("(-1,foo,-1,foo)", "empty")))
    with pytest.raises(ValueError, match="lack the columns"):
        drift_summary(pd.DataFrame({"step": [1]}))
