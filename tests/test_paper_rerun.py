"""The main job's evaluations/ table is a cache: a rerun into a finished folder adds no rows."""

from __future__ import annotations

import pandas as pd

from backends.table import TableBackend
from harness.app.paper import run_paper
from harness.store import ResultsStore
from tests.test_paper_tables import SMALL_SETTINGS

#: Studies that evaluate through the recorder: searches (PNAS, random, evolution) and fresh evaluations.
STUDIES = ["pnas_fig4", "thesis_kendall_fidelity"]


def test_rerun_into_a_finished_folder_adds_no_evaluations(tmp_path):
    run_paper(tmp_path, STUDIES, SMALL_SETTINGS)
    store = ResultsStore(tmp_path / "evaluations")
    first = store.read()
    first_tables = {p.name: p.read_bytes() for p in (tmp_path / "tables").glob("*.csv")}
    assert len(first) > 0 and len(store.parts()) == 1  # compacted at the end of the run
    run_paper(tmp_path, STUDIES, SMALL_SETTINGS)
    pd.testing.assert_frame_equal(store.read(), first)
    assert {p.name: p.read_bytes() for p in (tmp_path / "tables").glob("*.csv")} == first_tables
    # a replay averaging each cell's runs counts each recorded run once
    replay = TableBackend(tmp_path / "evaluations", run="mean")
    at = first[first["epochs"] == replay.max_epochs]
    runs = at.groupby("cell").size()
    assert runs.max() > 1
    cells = runs.index[:50].tolist()
    served = replay.evaluate(cells)
    assert served["runs"].tolist() == runs.loc[cells].tolist()
