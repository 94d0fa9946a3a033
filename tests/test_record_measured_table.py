"""The measured-table recorder's helpers: its drift monitor and the cross-run agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.record_measured_table import cross_run_agreement, drift_monitor
from harness import CellSpace


def test_drift_monitor_takes_the_first_symmetric_cells():
    space = CellSpace.pnas(max_blocks=3)
    assert drift_monitor(space, 0, 2) is None
    monitor = drift_monitor(space, 3, 2)
    assert monitor.cells == ("(-1,sep3x3,-1,sep3x3)", "(-1,sep5x5,-1,sep5x5)", "(-1,sep7x7,-1,sep7x7)")
    for bad in (1, 9, -1):
        with pytest.raises(ValueError, match=f"--drift-cells must be 0 or 2..8, got {bad}"):
            drift_monitor(space, bad, 2)


def test_cross_run_agreement_compares_the_cells_both_runs_trained():
    cells = [f"c{i}" for i in range(6)]
    base = np.arange(1.0, 7.0)
    table = pd.concat([
        pd.DataFrame({"strategy": "pnas", "cell": cells + ["only-pnas"], "train_time": [*base, 9.0],
                      "wall_time": [*(base * 2), 9.0]}),
        # popnas: 10 % slower on the CPU clock for every cell, wall clock reversed in order
        pd.DataFrame({"strategy": "popnas", "cell": cells, "train_time": base * 1.1,
                      "wall_time": base[::-1] * 2}),
    ])
    agreement = cross_run_agreement(table)
    assert agreement["cells"] == 6
    assert agreement["train_time"]["relative_deviation"] == pytest.approx(0.1 / 1.05)
    assert agreement["train_time"]["tau"] == pytest.approx(1.0)
    assert agreement["wall_time"]["tau"] == pytest.approx(-1.0)


def test_a_search_added_to_an_existing_table_keeps_the_others(tmp_path, monkeypatch):
    """Recording one search into a table that holds others: their rows, candidate summaries and
    provenance stay; a table recorded with other settings is not mixed in."""
    import json

    import backends
    import ablations.record_measured_table as recorder

    # the recorder's training backend replaced by the surrogate: same protocol, microseconds a cell
    make = backends.make
    monkeypatch.setattr(recorder.backends, "make", lambda name, space, **options: make("surrogate", space=space))
    settings = {**recorder.DEFAULTS, "max_blocks": 2, "K": 4, "drift_cells": 0}
    out = tmp_path / "table.parquet"
    first = recorder.record_measured_table(out=out, work=tmp_path / "w1", strategies="pnas", **settings)
    assert set(first["strategy"]) == {"pnas"}
    both = recorder.record_measured_table(out=out, work=tmp_path / "w2", strategies="popnas_v1", note="v1 added",
                                          **settings)
    assert both["strategy"].value_counts().to_dict() == {"pnas": len(first), "popnas_v1": len(both) - len(first)}
    pd.testing.assert_frame_equal(both.loc[both["strategy"] == "pnas", first.columns].reset_index(drop=True), first)
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert set(provenance["recordings"]) == {"pnas", "popnas_v1"}
    assert provenance["recordings"]["popnas_v1"]["note"] == "v1 added"
    assert provenance["recordings"]["pnas"]["command"] == provenance["recordings"]["popnas_v1"]["command"]
    # a table from before per-recording provenance: its top-level note becomes its searches' recording
    provenance.pop("recordings")
    out.with_suffix(".json").write_text(json.dumps({**provenance, "note": "old note", "command": "old"}))
    kept = recorder.record_measured_table(out=out, work=tmp_path / "w2", strategies="", **settings)
    assert len(kept) == len(both)
    recordings = json.loads(out.with_suffix(".json").read_text())["recordings"]
    assert recordings["pnas"]["note"] == "old note" and recordings["popnas_v1"]["note"] == ""
    assert provenance["completed_steps"] == {"pnas": 2, "popnas_v1": 2}
    assert set(pd.read_parquet(out.with_suffix(".candidates.parquet"))["strategy"]) == {"pnas", "popnas_v1"}
    # other settings: the old rows are not kept (they would mix two recordings' conditions)
    other = recorder.record_measured_table(out=out, work=tmp_path / "w3", strategies="popnas",
                                           **{**settings, "K": 3})
    assert set(other["strategy"]) == {"popnas"}
    with pytest.raises(ValueError, match=r"unknown search\(es\) \['pnasx'\]"):
        recorder.record_measured_table(out=out, work=tmp_path / "w4", strategies="pnasx", **settings)
