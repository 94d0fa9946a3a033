"""The thesis studies at tiny settings: documented columns, sane values, same seed same table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import backends
from ablations.thesis_kendall_fidelity import (
    default_epochs,
    fidelity_tau_matrix,
    plot_fidelity_heatmap,
    thesis_kendall_fidelity,
)
from ablations.thesis_rastrigin import (
    TABLE_COLUMNS,
    pygmo_cross_check,
    thesis_table4_3,
    thesis_table5_4,
)
from harness.metrics import CorrelationEstimate


@pytest.fixture(scope="module")
def table4_3():
    return thesis_table4_3(resolution=16, repetitions=60, generations=(0, 10, 200),
                           taus=(1.0, 0.75), progress=False)


def test_table4_3_columns_and_values(table4_3):
    assert tuple(table4_3.columns) == TABLE_COLUMNS
    assert len(table4_3) == 6
    assert (table4_3["dims"] == 3).all() and (table4_3["resolution"] == 16).all()
    assert (table4_3["repetitions"] == 60).all()
    for tau, rows in table4_3.groupby("tau"):
        assert rows["mean_top_fraction"].is_monotonic_decreasing
        assert rows["measured_tau"].iloc[0] == pytest.approx(tau, abs=0.02)
    assert table4_3[["mean_top_fraction", "mean_normalised_value"]].stack().between(0, 1).all()
    final = table4_3[table4_3["generations"] == 200].set_index("tau")["mean_top_fraction"]
    assert final[0.75] > final[1.0]


def test_table4_3_same_seed_same_table(table4_3):
    again = thesis_table4_3(resolution=16, repetitions=60, generations=(0, 10, 200),
                            taus=(1.0, 0.75), progress=False)
    pd.testing.assert_frame_equal(table4_3, again)


def test_table5_4_reports_each_dimensions_resolution():
    table = thesis_table5_4(dims=(2, 3), repetitions=8, generations=(5,), taus=(1.0, 0.65),
                            resolution={2: 20, 3: 10}, progress=False)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table.groupby("dims")["resolution"].unique().map(list).to_dict() == {2: [20], 3: [10]}
    assert len(table) == 4


def test_table_without_a_default_resolution_is_refused():
    with pytest.raises(ValueError, match="no default resolution for dims=5"):
        thesis_table5_4(dims=(5,), repetitions=2, generations=(1,), progress=False)


def test_pygmo_cross_check_compares_the_same_settings():
    pytest.importorskip("pygmo")
    table = pygmo_cross_check(dims=2, resolution=20, repetitions=12, vectorised_repetitions=120,
                              generations=(0, 15), taus=(0.75,), progress=False)
    assert table[["generations", "repetitions", "pygmo_repetitions"]].values.tolist() == [
        [0, 120, 12], [15, 120, 12]]
    assert (table["mannwhitney_p"] > 0.01).all()


@pytest.fixture(scope="module")
def fidelity():
    return thesis_kendall_fidelity(cells_per_block_count=60, n_boot=200)


def test_fidelity_table_layout(fidelity):
    assert list(fidelity.columns[:5]) == ["epochs", "full_epochs", "comparison", "rounding", "expected_tau"]
    assert set(CorrelationEstimate.__dataclass_fields__) <= set(fidelity.columns)
    assert fidelity["epochs"].tolist() == [1, 2, 5, 10, 20] * 2
    assert fidelity["rounding"].tolist() == ["raw"] * 5 + ["percent"] * 5
    assert fidelity["expected_tau"].isna().tolist() == [False] * 5 + [True] * 5


@pytest.mark.parametrize("rounding", ["raw", "percent"])
def test_tau_rises_with_epochs_to_a_ceiling_below_one(fidelity, rounding):
    rows = fidelity[fidelity["rounding"] == rounding]
    assert rows["value"].is_monotonic_increasing
    ceiling = rows[rows["comparison"] == "ceiling"]
    assert ceiling["epochs"].tolist() == [20]
    assert 0.8 < ceiling["value"].item() < 0.97
    assert (rows["ci_low"] <= rows["value"]).all() and (rows["value"] <= rows["ci_high"]).all()


def test_raw_tau_matches_the_surrogates_population_tau(fidelity):
    raw = fidelity[fidelity["rounding"] == "raw"]
    assert (abs(raw["value"] - raw["expected_tau"]) < 4 * raw["std_error"]).all()


def test_fidelity_table_same_seed_same_table(fidelity):
    pd.testing.assert_frame_equal(fidelity, thesis_kendall_fidelity(cells_per_block_count=60, n_boot=200))


def test_default_epochs_follow_the_fidelity_fractions():
    assert default_epochs(20) == (1, 2, 5, 10, 20)
    assert default_epochs(108) == (5, 11, 27, 54, 108)


def test_bad_study_arguments_are_named():
    with pytest.raises(ValueError, match="epochs=40 is outside 1..20"):
        thesis_kendall_fidelity(epochs=(5, 40), cells_per_block_count=10, n_boot=10)
    with pytest.raises(ValueError, match="unknown rounding 'floor'"):
        fidelity_tau_matrix(rounding="floor")
    with pytest.raises(ValueError, match="cells_per_block_count must be an integer >= 3, got 2"):
        thesis_kendall_fidelity(cells_per_block_count=2)


def test_tau_matrix_and_heatmap(tmp_path):
    backend = backends.make("surrogate", max_epochs=8)
    matrix = fidelity_tau_matrix(backend, epochs=(1, 4), cells_per_block_count=40, rounding="raw")
    assert matrix.index.tolist() == matrix.columns.tolist() == [1, 4, 8]
    assert (matrix.index.name, matrix.columns.name) == ("epochs_a", "epochs_b")
    values = matrix.to_numpy()
    assert (values < 1).all()
    # the lowest fidelity agrees with the full one less than the full one with its re-run
    assert matrix.loc[1, 8] < matrix.loc[8, 8]
    path = plot_fidelity_heatmap(matrix, tmp_path / "figures" / "fidelity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["fidelity.png"]  # no temporary file left
    with pytest.raises(ValueError, match="written as PNG"):
        plot_fidelity_heatmap(matrix, tmp_path / "fidelity.svg")
    assert np.isfinite(values).all()
