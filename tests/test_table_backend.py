"""The table backend: schema checks, run policies, missing cells, fallbacks, virtual clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backends
from backends import table as table_module
from backends.surrogate import SurrogateBackend
from backends.table import CellNotInTable, TableBackend, load_results_table
from harness.space import CellSpace

FIXTURE = Path(__file__).resolve().parent / "data" / "runs_three_seeds.csv"

CELL_A = "(-2,sep3x3,-1,maxpool3x3)"  # seeds 0, 1, 2 at 20 epochs, seed 0 at 5 epochs
CELL_B = "(-1,identity,-1,avgpool3x3)"  # seeds 0, 1, 2 at 20 epochs (seed 2 written branch-swapped)
CELL_AB = "(-2,sep3x3,-1,maxpool3x3)(-1,avgpool3x3,0,identity)"  # seed 0 only, branch-swapped in the file
CELL_C = "(-2,dilconv3x3,-1,sep5x5)(-1,identity,0,sep7x7)"  # written non-canonically in the file
ABSENT = "(-1,sep7x7,-1,sep7x7)"

SPACE = CellSpace.pnas()


@pytest.fixture
def raw() -> pd.DataFrame:
    return pd.read_csv(FIXTURE)


def write_csv(frame: pd.DataFrame, folder: Path, name: str = "results.csv") -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------- schema checks
@pytest.mark.parametrize(
    "column, row, value, message",
    [
        ("accuracy", 2, 1.5, "is not a finite accuracy in [0, 1]"),
        ("accuracy", 4, "n/a", "is not a finite accuracy in [0, 1]"),
        ("train_time", 8, -3.0, "-3.0 is not a positive finite time"),
        ("epochs", 3, 0, "is not a positive integer number of epochs"),
        ("epochs", 6, 2.5, "is not a positive integer number of epochs"),
        ("seed", 5, -1, "is not a non-negative integer seed"),
        ("blocks", 1, 2, "does not match the number of blocks"),
    ],
)
def test_bad_value_names_file_row_and_column(raw, tmp_path, column, row, value, message):
    raw[column] = raw[column].astype(object)
    raw.loc[row - 1, column] = value
    path = write_csv(raw, tmp_path)
    with pytest.raises(ValueError) as info:
        TableBackend(path)
    text = str(info.value)
    assert text.startswith(f"{path} row {row}, column {column!r}: ")
    assert message in text


def test_unknown_operator_names_file_row_column_and_token(raw, tmp_path):
    raw.loc[6, "cell"] = "(-1,identity,-1,conv9x9)"
    path = write_csv(raw, tmp_path)
    with pytest.raises(ValueError, match=r"results\.csv row 7, column 'cell': unknown operator 'conv9x9'"):
        TableBackend(path)


def test_input_out_of_range_is_reported_with_row(raw, tmp_path):
    raw.loc[0, "cell"] = "(3,sep3x3,-1,maxpool3x3)"
    path = write_csv(raw, tmp_path)
    with pytest.raises(ValueError, match=r"row 1, column 'cell': input 3 out of range"):
        TableBackend(path)


def test_missing_column_is_named(raw, tmp_path):
    path = write_csv(raw.drop(columns="train_time"), tmp_path)
    with pytest.raises(ValueError, match=r"results\.csv: missing column\(s\) \['train_time'\]"):
        TableBackend(path)


def test_missing_cell_text_is_reported(raw, tmp_path):
    raw.loc[3, "cell"] = None
    path = write_csv(raw, tmp_path)
    with pytest.raises(ValueError, match=r"row 4, column 'cell': .* is not a cell text"):
        TableBackend(path)


def test_unsupported_suffix_and_missing_file(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="use a .parquet or .csv"):
        TableBackend(tmp_path / "results.json")
    with pytest.raises(FileNotFoundError, match="nope.parquet does not exist"):
        TableBackend(tmp_path / "nope.parquet")


def test_load_canonicalises_cells_and_types_columns():
    table = load_results_table(FIXTURE, SPACE)
    assert table.loc[6, "cell"] == CELL_B  # written "(-1,avgpool3x3,-1,identity)"
    assert table.loc[7, "cell"] == CELL_AB
    assert table.loc[8, "cell"] == CELL_C
    assert table["epochs"].dtype == np.int64 and table["seed"].dtype == np.int64
    assert list(table["device"]) == list(pd.read_csv(FIXTURE)["device"])


def test_parquet_and_csv_serve_the_same_rows(raw, tmp_path):
    parquet = tmp_path / "results.parquet"
    raw.to_parquet(parquet, index=False)
    cells = [CELL_A, CELL_B, CELL_AB, CELL_C]
    from_csv = TableBackend(FIXTURE).evaluate(cells, seed=0)
    from_parquet = TableBackend(parquet).evaluate(cells, seed=0)
    pd.testing.assert_frame_equal(
        from_csv.drop(columns="backend_options"), from_parquet.drop(columns="backend_options")
    )


# ---------------------------------------------------------------------- runs
def test_seed_policy_serves_the_run_with_that_seed():
    backend = backends.make("table", path=FIXTURE)
    assert isinstance(backend, TableBackend) and backend.max_epochs == 20
    for seed, accuracy, time in ((0, 0.61, 12.5), (1, 0.63, 12.9), (2, 0.65, 12.1)):
        row = backend.evaluate([CELL_A], seed=seed).iloc[0]
        assert (row.accuracy, row.train_time, row.seed, row.run_seed, row.runs) == (
            accuracy, time, seed, seed, 1
        )
    # the branch-swapped row of the file is found under the canonical cell
    assert backend.evaluate([CELL_B], seed=2).iloc[0].accuracy == 0.56
    assert backend.evaluate([CELL_B], seed=2).iloc[0].device == "gpu"


def test_epochs_select_runs_and_none_means_the_largest():
    backend = TableBackend(FIXTURE)
    assert backend.evaluate([CELL_A]).iloc[0].epochs == 20
    low = backend.evaluate([CELL_A], epochs=5).iloc[0]
    assert (low.accuracy, low.epochs) == (0.41, 5)
    with pytest.raises(CellNotInTable, match=r"has no run at epochs=5, seed=0 .* its runs: epochs=20 seed=0"):
        backend.evaluate([CELL_B], epochs=5)
    with pytest.raises(ValueError, match="outside 1..20"):
        backend.evaluate([CELL_A], epochs=21)


def test_seed_policy_missing_seed_lists_the_cells_runs():
    with pytest.raises(CellNotInTable) as info:
        TableBackend(FIXTURE).evaluate([CELL_A, CELL_B], seed=7)
    text = str(info.value)
    assert CELL_A in text and str(FIXTURE) in text
    assert "epochs=5 seed=0, epochs=20 seed=0, epochs=20 seed=1, epochs=20 seed=2" in text
    assert "1 more cell(s) of this batch are missing too" in text


def test_sample_policy_is_deterministic_and_spreads_over_runs():
    backend = TableBackend(FIXTURE, run="sample")
    runs = {0: 0.61, 1: 0.63, 2: 0.65}
    served = []
    for seed in range(30):
        first = backend.evaluate([CELL_A, CELL_B], seed=seed)
        again = backend.evaluate([CELL_A, CELL_B], seed=seed)
        pd.testing.assert_frame_equal(first.drop(columns="virtual_clock"), again.drop(columns="virtual_clock"))
        row = first.iloc[0]
        assert row.seed == seed and runs[row.run_seed] == row.accuracy  # the run it names
        served.append(row.run_seed)
    assert set(served) == {0, 1, 2}


def test_mean_policy_averages_the_runs():
    frame = TableBackend(FIXTURE, run="mean").evaluate([CELL_A, CELL_AB, CELL_B], seed=4)
    assert frame.accuracy.tolist() == pytest.approx([0.63, 0.70, 0.54])
    assert frame.train_time.tolist() == pytest.approx([12.5, 25.0, 4.2])
    assert frame.runs.tolist() == [3, 1, 3]
    assert frame.run_seed.isna().all()
    assert frame.device.tolist() == ["cpu", "cpu", "cpu"]  # non-numeric extras: the first run's


def test_repeated_rows_keep_the_first(raw, tmp_path):
    repeated = pd.concat([raw, raw.iloc[[0]].assign(accuracy=0.99)], ignore_index=True)
    path = write_csv(repeated, tmp_path)
    assert TableBackend(path).evaluate([CELL_A], seed=0).iloc[0].accuracy == 0.61


def test_recorded_provenance_is_served_as_source_columns(raw, tmp_path):
    path = write_csv(raw.assign(backend="training", git_commit="abc"), tmp_path)
    row = TableBackend(path).evaluate([CELL_A]).iloc[0]
    assert (row.backend, row.source_backend, row.source_git_commit) == ("table", "training", "abc")


# ---------------------------------------------------------------------- missing cells and fallbacks
def test_missing_cell_error_names_cell_and_table():
    with pytest.raises(CellNotInTable) as info:
        TableBackend(FIXTURE).evaluate([CELL_A, ABSENT])
    assert isinstance(info.value, LookupError)
    assert f"cell {ABSENT!r} is not in table {FIXTURE}" in str(info.value)


def hamming_reference(query: str, table_cells: list[str]) -> str:
    """Per-cell Python version of the documented distance and tie rule."""
    query_blocks = SPACE.batch([query]).blocks.reshape(-1)
    batch = SPACE.batch(table_cells)
    distances = [(int((query_blocks != blocks.reshape(-1)).sum()), key, text)
                 for blocks, key, text in zip(batch.blocks, SPACE.keys(batch), table_cells)]
    return min(distances)[2]


def test_nearest_fallback_fills_in_from_the_nearest_cell():
    backend = TableBackend(FIXTURE, fallback="nearest")
    one_op_away = "(-2,sep3x3,-1,maxpool3x3)(-1,maxpool3x3,0,identity)"
    frame = backend.evaluate([CELL_A, one_op_away, ABSENT], seed=0)
    assert frame.filled_in.tolist() == [False, True, True]
    assert pd.isna(frame.filled_from.iloc[0]) and frame.filled_from.iloc[1] == CELL_AB
    assert frame.accuracy.iloc[1] == 0.70 and frame.cell.iloc[1] == one_op_away
    table_cells = [CELL_A, CELL_B, CELL_AB, CELL_C]
    queries = SPACE.format(SPACE.sample(40, 2, seed=1)) + SPACE.format(SPACE.sample(40, 1, seed=2))
    served = backend.evaluate(queries, seed=0)
    expected = [q if q in table_cells else hamming_reference(q, table_cells) for q in queries]
    assert served.filled_from.fillna(served.cell).tolist() == expected


def test_nearest_fallback_respects_the_seed_policy():
    # CELL_B has seed 1, CELL_AB and CELL_C do not: the neighbour must have a run at seed 1
    frame = TableBackend(FIXTURE, fallback="nearest").evaluate([CELL_C], seed=1)
    assert frame.filled_from.iloc[0] in (CELL_A, CELL_B)
    with pytest.raises(CellNotInTable, match="nothing to fill in from"):
        TableBackend(FIXTURE, fallback="nearest").evaluate([CELL_C], seed=9)


def test_surrogate_fallback_scores_missing_cells():
    options = {"landscape_seed": 3}
    backend = TableBackend(FIXTURE, fallback="surrogate", fallback_options=options)
    frame = backend.evaluate([ABSENT, CELL_A], seed=1)
    expected = SurrogateBackend(max_epochs=20, **options).evaluate([ABSENT], seed=1).iloc[0]
    assert frame.filled_in.tolist() == [True, False]
    assert (frame.accuracy.iloc[0], frame.train_time.iloc[0]) == (expected.accuracy, expected.train_time)
    assert frame.runs.tolist() == [0, 1] and frame.filled_from.isna().all()
    assert pd.isna(frame.device.iloc[0]) and frame.device.iloc[1] == "cpu"
    assert frame.accuracy.iloc[1] == 0.63


def test_fallback_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown fallback 'closest'"):
        TableBackend(FIXTURE, fallback="closest")
    with pytest.raises(ValueError, match="only used with fallback='surrogate'"):
        TableBackend(FIXTURE, fallback="nearest", fallback_options={"tau": 0.5})
    with pytest.raises(ValueError, match="unknown run policy 'median'"):
        TableBackend(FIXTURE, run="median")


# ---------------------------------------------------------------------- virtual clock
def test_virtual_clock_sums_served_training_time():
    backend = TableBackend(FIXTURE, fallback="surrogate")
    first = backend.evaluate([CELL_A, CELL_B], seed=0)
    assert first.virtual_clock.tolist() == pytest.approx([12.5, 16.5])
    second = backend.evaluate([CELL_AB, ABSENT], seed=0)
    fill_in_time = second.train_time.iloc[1]
    assert second.virtual_clock.tolist() == pytest.approx([41.5, 41.5 + fill_in_time])
    assert backend.simulated_time == pytest.approx(41.5 + fill_in_time)
    backend.reset_clock()
    assert backend.simulated_time == 0.0
    assert backend.evaluate([CELL_A], seed=1).virtual_clock.tolist() == [12.9]


def test_empty_batch_serves_no_rows():
    backend = TableBackend(FIXTURE)
    frame = backend.evaluate([])
    assert len(frame) == 0 and "virtual_clock" in frame and backend.simulated_time == 0.0


# ---------------------------------------------------------------------- embedded table
def test_default_path_is_the_embedded_table(monkeypatch, tmp_path, raw):
    monkeypatch.setattr(table_module, "EMBEDDED_TABLE", tmp_path / "measured_digits_cpu.parquet")
    with pytest.raises(FileNotFoundError, match="embedded measured table .* has not been recorded"):
        backends.make("table")
    raw.to_parquet(tmp_path / "measured_digits_cpu.parquet", index=False)
    assert backends.make("table").evaluate([CELL_A]).accuracy.iloc[0] == 0.61


def test_embedded_table_constant_points_into_the_package():
    assert table_module.EMBEDDED_TABLE == (
        Path(backends.__file__).resolve().parent / "data" / "measured_digits_cpu.parquet"
    )


def test_empty_table_is_an_error(raw, tmp_path):
    path = write_csv(raw.iloc[:0], tmp_path)
    with pytest.raises(ValueError, match=r"results\.csv: the results table has no rows"):
        TableBackend(path)


# ---------------------------------------------------------------------- space from provenance
@pytest.fixture(scope="module")
def recorded_3_blocks(tmp_path_factory):
    """A table recorded by backends.record from a surrogate over CellSpace.pnas(max_blocks=3)."""
    space = CellSpace.pnas(max_blocks=3)
    path = tmp_path_factory.mktemp("recorded") / "run"
    recorder = backends.record(backends.make("surrogate", space=space), path)
    cells = space.sample(40, 3, seed=0)
    return path, cells, recorder.evaluate(cells, seed=0)


def test_table_reads_its_space_from_the_recorded_provenance(recorded_3_blocks):
    path, cells, original = recorded_3_blocks
    replay = backends.make("table", path=path)
    assert replay.space == CellSpace.pnas(max_blocks=3)
    served = replay.evaluate(cells, seed=0)
    np.testing.assert_array_equal(served["accuracy"], original["accuracy"])
    assert table_module.recorded_space(original) == {"space": "pnas", "max_blocks": 3, "lookback": 2}
    assert table_module.recorded_space(pd.read_csv(FIXTURE)) is None  # no provenance: PNAS, B = 5
    assert TableBackend(FIXTURE).space == CellSpace.pnas()


def test_table_serves_cells_of_a_space_with_fewer_blocks(recorded_3_blocks):
    path, cells, original = recorded_3_blocks
    larger = backends.make("table", path=path, space=CellSpace.pnas(max_blocks=5))
    served = larger.evaluate(cells, seed=0)  # a (40, 3, 4) block array served by a 5-block table
    assert served["cell"].tolist() == original["cell"].tolist()
    np.testing.assert_array_equal(served["accuracy"], original["accuracy"])
    # cells must be valid in the table's own space: a lookback-1 table refuses input -2
    lookback_1 = CellSpace.pnas(max_blocks=4, lookback=1)
    backends.record(backends.make("surrogate", space=lookback_1), path.parent / "lb1").evaluate(
        lookback_1.sample(5, 2, seed=0))
    reading_two_back = CellSpace.pnas(max_blocks=3).batch(["(-2,sep3x3,-2,identity)"])
    with pytest.raises(ValueError, match="invalid input in block 1"):
        backends.make("table", path=path.parent / "lb1").evaluate(reading_two_back)


def test_table_of_another_space_is_refused(tmp_path):
    popnas = CellSpace.popnas(max_blocks=2)
    path = tmp_path / "popnas"
    backends.record(backends.make("surrogate", space=popnas), path).evaluate(popnas.sample(10, 2, seed=0))
    assert backends.make("table", path=path).space == popnas
    with pytest.raises(ValueError, match="recorded in the 'popnas' space .* cannot be served as the 'pnas'"):
        backends.make("table", path=path, space=CellSpace.pnas(max_blocks=2))
    with pytest.raises(ValueError, match="recorded in the 'popnas' space"):
        backends.make("table", path=path, space="pnas")
    pnas = tmp_path / "pnas"
    backends.record(backends.make("surrogate", max_blocks=2), pnas).evaluate(popnas.sample(10, 2, seed=0))
    with pytest.raises(ValueError, match="recorded in the 'pnas' space .* cannot be served as the 'popnas'"):
        backends.make("table", path=pnas, space=popnas)


def test_table_mixing_spaces_needs_one_space(tmp_path):
    path = tmp_path / "mixed"
    for space in (CellSpace.pnas(max_blocks=2), CellSpace.popnas(max_blocks=2)):
        backends.record(backends.make("surrogate", space=space), path).evaluate(space.sample(5, 1, seed=0))
    with pytest.raises(ValueError, match="recorded in different spaces"):
        TableBackend(path)


@pytest.mark.parametrize("sep, label", [(";", "';'"), ("\t", "tabs")])
def test_csv_with_another_delimiter_gets_a_hint(raw, tmp_path, sep, label):
    path = tmp_path / "results.csv"
    raw.to_csv(path, index=False, sep=sep)
    with pytest.raises(ValueError, match=rf"not a readable CSV file.*looks separated by {label}"):
        TableBackend(path)  # the cells' commas make rows of different lengths
    raw[["blocks", "accuracy", "epochs"]].to_csv(path, index=False, sep=sep)
    with pytest.raises(ValueError, match=rf"missing column\(s\).*looks separated by {label}"):
        TableBackend(path)


def test_corrupt_table_files_are_named(raw, tmp_path):
    from harness.store import CorruptTableError

    path = tmp_path / "results.parquet"
    raw.to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptTableError, match=r"results\.parquet is not a readable parquet file"):
        TableBackend(path)
    folder = tmp_path / "recorded"
    store = table_module.ResultsStore(folder)
    store.append(raw)
    bad = store.append(raw)
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(CorruptTableError, match=bad.name):
        TableBackend(folder)
