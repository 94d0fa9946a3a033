"""Fitting the surrogate's time model to measured tables by least squares."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import backends
from backends.time_fit import fit_time_model, load_constants, main, save_constants
from harness import CellSpace
from harness.operators import PNAS_ORDER

KNOWN = dict(operator_costs=dict(zip(PNAS_ORDER, (0.4, 0.7, 1.1, 0.5, 0.05, 0.12, 0.15, 0.3))),
             input_cost=0.08, time_overhead=0.02, time_growth=0.15)


def _measured(space, noise_sd=0.0, seed=0):
    """A table of surrogate clean times for ``KNOWN`` (5 epochs), optionally with log-normal noise."""
    surrogate = backends.make("surrogate", space=space, **KNOWN)
    cells = space.batch(["empty"] + [c for b in range(1, space.max_blocks + 1)
                                     for c in space.format(space.sample(40, b, seed=b))])
    times = surrogate.clean_train_time(cells, epochs=5)
    times = times * np.exp(np.random.default_rng(seed).normal(0, noise_sd, len(times)))
    return pd.DataFrame({"cell": space.format(cells), "blocks": cells.num_blocks, "epochs": 5,
                         "train_time": times})


def test_fit_recovers_the_constants_of_noise_free_times():
    space = CellSpace.pnas(max_blocks=4)
    fitted = fit_time_model(_measured(space), space, {"table": "synthetic"})
    for op in PNAS_ORDER:
        assert fitted.operator_costs[op] == pytest.approx(KNOWN["operator_costs"][op], rel=1e-4)
    assert fitted.input_cost == pytest.approx(0.08, rel=1e-4)
    assert fitted.overhead == pytest.approx(0.02, rel=1e-3)
    assert fitted.growth == pytest.approx(0.15, rel=1e-4)
    assert fitted.source["mean_relative_error"] < 1e-5 and fitted.time_tau > 0.999
    assert fitted.source["table"] == "synthetic" and fitted.source["rows"] == 161


def test_noise_shows_in_the_fit_errors_and_tau():
    space = CellSpace.pnas(max_blocks=4)
    fitted = fit_time_model(_measured(space, noise_sd=0.2), space)
    assert fitted.growth == pytest.approx(0.15, abs=0.06)
    assert 0.15 < fitted.log_residual_sd < 0.25
    assert 0.1 < fitted.source["mean_relative_error"] < 0.25 and fitted.time_tau < 0.95


def test_constants_round_trip_and_the_command(tmp_path):
    space = CellSpace.pnas(max_blocks=3)
    table = _measured(space)
    table.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.json").write_text(json.dumps({"clock": "cpu", "settings": {"max_blocks": 3}}))
    main(["--table", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "c.json")])
    loaded = load_constants(tmp_path / "c.json")
    assert loaded.source["clock"] == "cpu" and loaded.growth == pytest.approx(0.15, rel=1e-4)
    save_constants(loaded, tmp_path / "again.json")
    assert load_constants(tmp_path / "again.json") == loaded
    # a surrogate built on the constants reproduces the table's times
    surrogate = backends.make("surrogate", space=space, operator_costs=loaded.operator_costs,
                              input_cost=loaded.input_cost, time_overhead=loaded.overhead,
                              time_growth=loaded.growth)
    np.testing.assert_allclose(surrogate.clean_train_time(space.parse_many(table["cell"]), epochs=5),
                               table["train_time"], rtol=1e-4)


def test_bad_tables_are_refused(tmp_path):
    space = CellSpace.pnas(max_blocks=2)
    with pytest.raises(ValueError, match=r"columns \['epochs'\]"):
        fit_time_model(pd.DataFrame({"cell": ["empty"], "train_time": [1.0]}), space)
    table = _measured(space)
    table.loc[3, "train_time"] = -1.0
    with pytest.raises(ValueError, match="positive finite train_time"):
        fit_time_model(table, space)
    (tmp_path / "bad.json").write_text(json.dumps({"growth": 1}))
    with pytest.raises(ValueError, match="not a time-constants file"):
        load_constants(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="operator_costs must map every operator"):
        backends.make("surrogate", operator_costs={"sep3x3": 1.0})
    with pytest.raises(ValueError, match="time_growth=-0.5 makes 5-block cells"):
        backends.make("surrogate", time_growth=-0.5)


def test_the_command_fits_the_chosen_recordings_only(tmp_path):
    space = CellSpace.pnas(max_blocks=3)
    table = _measured(space)
    # a second recording of the same cells on a machine twice as slow: left out by default
    both = pd.concat([table.assign(strategy="pnas"), table.assign(strategy="popnas_v1",
                                                                  train_time=2 * table["train_time"])])
    both.to_parquet(tmp_path / "t.parquet")
    main(["--table", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "c.json"), "--strategies", "pnas"])
    loaded = load_constants(tmp_path / "c.json")
    assert loaded.source["rows"] == len(table) and loaded.source["strategies"] == "pnas"
    assert loaded.operator_costs["sep3x3"] == pytest.approx(KNOWN["operator_costs"]["sep3x3"], rel=1e-4)
    with pytest.raises(ValueError, match=r"--strategies: \['popnas'\] not in"):
        main(["--table", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "c.json"), "--strategies", "popnas"])
