"""NAS-Bench-201: the space, and the backend on the packaged table (and a user's own copies of it)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import backends
from backends.nb201 import (
    NB201_DIR_ENV,
    NB201_FILE,
    NB201_PARQUET,
    PACKAGED_NB201_DIR,
    NB201Backend,
    find_nb201_table,
    load_nb201_table,
)
from harness.nb201_space import NB201_OPERATORS, NB201Batch, NB201Space
from tests.conftest import shared_dir

SPACE = NB201Space()
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return PACKAGED_NB201_DIR


@pytest.fixture(scope="module")
def csv(data_dir) -> pd.DataFrame:
    """The packaged table read directly (the backend reads it through its checks and key index)."""
    return pd.read_parquet(data_dir / NB201_PARQUET)


@pytest.fixture(scope="module")
def backend(data_dir) -> NB201Backend:
    return NB201Backend(data_dir=data_dir)


# ---------------------------------------------------------------------- space
ops_tuples = st.lists(st.integers(0, len(NB201_OPERATORS) - 1), min_size=6, max_size=6)


@given(ops_tuples)
def test_format_parse_round_trip(ops):
    text = SPACE.format(ops)
    assert SPACE.parse(text).tolist() == ops
    assert SPACE.parse_many([text, f"  {text} "]).ops.tolist() == [ops, ops]
    assert text.count("~") == 6 and text.split("|")[1].startswith(NB201_OPERATORS[ops[0]])


def test_cell_string_layout():
    assert SPACE.format([3, 0, 1, 4, 2, 3]) == (
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )


def test_all_cells_are_the_distinct_cells_in_key_order():
    cells = SPACE.all_cells()
    assert SPACE.num_cells == 15625 and cells.shape == (15625, 6) and cells.dtype == np.int8
    np.testing.assert_array_equal(SPACE.keys(cells), np.arange(15625))
    assert len(np.unique(cells, axis=0)) == 15625
    np.testing.assert_array_equal(SPACE.from_keys(SPACE.keys(cells[::7])), cells[::7])


def test_num_blocks_counts_non_none_operators():
    cells = np.array([[0] * 6, [3] * 6, [0, 1, 0, 2, 0, 4]], dtype=np.int8)
    assert SPACE.num_blocks(cells).tolist() == [0, 6, 3]
    assert SPACE.batch(cells).num_blocks.tolist() == [0, 6, 3]


def test_matrix_round_trip_and_checks():
    cells = SPACE.sample(50, seed=1)
    matrix = SPACE.to_matrix(cells)
    assert matrix.shape == (50, 7) and (matrix[:, 0] == SPACE.num_blocks(cells)).all()
    np.testing.assert_array_equal(SPACE.from_matrix(matrix), cells)
    matrix[4, 0] += 1
    with pytest.raises(ValueError, match="row 4 says"):
        SPACE.from_matrix(matrix)


def test_sample_is_seeded_and_distinct():
    a, b = SPACE.sample(500, seed=7), SPACE.sample(500, seed=7)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(SPACE.keys(a))) == 500
    assert not np.array_equal(a, SPACE.sample(500, seed=8))
    with pytest.raises(ValueError, match="only 15625"):
        SPACE.sample(15626)


@pytest.mark.parametrize(
    "text, message",
    [
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operator 'conv_5x5'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed token 'none~1'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "malformed group '|none~0|' of node 2"),
        ("|none~0|+|none~0|none~1|", "expected 3 '+'-separated node groups"),
    ],
)
def test_parse_errors_name_the_bad_part(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SPACE.parse(text)


def test_batch_accepts_strings_arrays_and_tuples():
    cells = SPACE.sample(4, seed=3).ops
    texts = list(SPACE.format_array(cells))
    for given_cells in (texts, cells, [tuple(row) for row in cells.tolist()], NB201Batch(cells)):
        np.testing.assert_array_equal(SPACE.batch(given_cells).ops, cells)
    with pytest.raises(ValueError, match="operator id 5 on edge 2"):
        SPACE.batch(np.array([[0, 0, 5, 0, 0, 0]]))
    with pytest.raises(ValueError, match="cell 1: unknown operator 'bogus'"):
        SPACE.batch([texts[0], "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"])


def test_loader_names_file_row_and_column(tmp_path):
    rows = pd.DataFrame({"idx": [0, 1], "arch_str": [ALL_NONE, ALL_NONE.replace("none~2", "max_pool~2")]})
    rows.to_csv(tmp_path / NB201_FILE, index=False)
    with pytest.raises(ValueError, match=r"nb201_acc_latency\.csv row 2, column 'arch_str': unknown operator 'max_pool'"):
        load_nb201_table(tmp_path)


def test_missing_data_dir_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(NB201_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / NB201_FILE} exists \\(folder from data_dir\\)"):
        NB201Backend(data_dir=tmp_path)


def test_packaged_copy_is_the_default_and_needs_no_shared_folder(monkeypatch):
    monkeypatch.delenv(NB201_DIR_ENV, raising=False)
    assert find_nb201_table() == PACKAGED_NB201_DIR / NB201_PARQUET
    backend = NB201Backend()
    assert backend.options()["data_dir"] is None  # provenance independent of the install location
    for name in ("README.md", "LICENSE-NATS-Bench.md", "LICENSE-HELP.md"):
        assert (PACKAGED_NB201_DIR / name).is_file()


def test_packaged_copy_equals_the_shared_csv(csv):
    """Provenance check: the parquet holds the shared CSV unchanged (where the shared folder exists)."""
    source = shared_dir() / "data" / "nb201" / NB201_FILE
    if not source.is_file():
        pytest.skip(f"{source} not present; the packaged copy is checked by the anchors instead")
    pd.testing.assert_frame_equal(csv, pd.read_csv(source))


def test_a_users_csv_copy_is_read_from_data_dir(tmp_path, csv):
    csv.to_csv(tmp_path / NB201_FILE, index=False)
    own = NB201Backend(data_dir=tmp_path, dataset="cifar100")
    assert own.options()["data_dir"] == str(tmp_path)
    frame = own.evaluate([ALL_CONV3])
    expected = csv.loc[csv["arch_str"] == ALL_CONV3, "cifar100_test_acc_200ep"].iloc[0] / 100
    assert frame["accuracy"].iloc[0] == expected


# ---------------------------------------------------------------------- backend on the real table
def test_table_has_every_cell_once(data_dir):
    table = load_nb201_table(data_dir)
    assert len(table) == 15625
    assert sorted(table["key"]) == list(range(15625))


def test_anchor_cells(backend):
    frame = backend.evaluate([ALL_NONE, ALL_CONV3])
    assert frame["accuracy"].tolist() == pytest.approx([0.10, 0.9376], abs=1e-12)
    assert frame["blocks"].tolist() == [0, 6]
    assert (frame["epochs"] == 200).all() and (frame["backend"] == "nb201").all()


def test_lookups_match_the_csv_exactly(backend, csv):
    rows = csv.sample(25, random_state=0)
    frame = backend.evaluate(rows["arch_str"].tolist(), seed=3)
    np.testing.assert_array_equal(frame["cell"], rows["arch_str"])
    np.testing.assert_array_equal(frame["accuracy"], rows["cifar10_test_acc_200ep"].to_numpy() / 100)
    np.testing.assert_array_equal(frame["cost"], rows["lat_gold_6226"])
    np.testing.assert_array_equal(frame["train_time"], rows["lat_gold_6226"].to_numpy() / 1000)
    np.testing.assert_array_equal(frame["nb201_index"], rows["idx"])
    assert (frame["cost_name"] == "lat_gold_6226").all() and (frame["seed"] == 3).all()


def test_whole_space_as_an_array(backend, csv):
    frame = backend.evaluate(SPACE.all_cells())
    by_string = csv.set_index("arch_str").loc[frame["cell"]]
    np.testing.assert_array_equal(frame["accuracy"], by_string["cifar10_test_acc_200ep"].to_numpy() / 100)
    assert frame["accuracy"].max() == pytest.approx(0.9437333333)


def test_dataset_and_cost_choice(data_dir, csv):
    other = backends.make("nb201", data_dir=data_dir, dataset="imagenet16", cost="lat_raspi4")
    frame = other.evaluate(csv["arch_str"].iloc[:5].tolist())
    np.testing.assert_array_equal(frame["accuracy"], csv["imagenet16_test_acc_200ep"].iloc[:5] / 100)
    np.testing.assert_array_equal(frame["cost"], csv["lat_raspi4"].iloc[:5])


def test_bad_names_list_the_valid_ones(data_dir):
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; .* \['cifar10', 'cifar100', 'imagenet16'\]"):
        NB201Backend(data_dir=data_dir, dataset="mnist")
    with pytest.raises(ValueError, match=r"unknown cost 'lat_tpu'; .*'lat_gold_6226'"):
        NB201Backend(data_dir=data_dir, cost="lat_tpu")


def test_only_200_epochs_exist(backend):
    assert backend.evaluate([ALL_NONE], epochs=200)["epochs"].iloc[0] == 200
    with pytest.raises(ValueError, match="only has 200-epoch results"):
        backend.evaluate([ALL_NONE], epochs=12)


#: Tolerance of the realised Kendall tau-b over all 15,625 cells: the copula sets tau in the population of
#: normal scores; one noise draw over 15,625 cells has a sampling spread of ~0.003 in tau-b, and the
#: table's ties (5,735 distinct accuracies) move it by about as much (measured: within 0.004 at every
#: tau and seed tried). A copula that ignored the ties' mass (np.unique's even spread) missed by 0.04.
NOISY_TAU_TOLERANCE = 0.006


@pytest.mark.parametrize("tau", [0.55, 0.75, 0.95])
def test_noisy_accuracy_has_the_set_kendall_tau_over_the_whole_table(data_dir, csv, tau):
    from harness.noise import kendall_tau

    noisy = NB201Backend(data_dir=data_dir, tau=tau)
    for seed in (0, 1):
        frame = noisy.evaluate(SPACE.all_cells(), seed=seed)
        by_string = csv.set_index("arch_str").loc[frame["cell"]]
        np.testing.assert_array_equal(frame["accuracy_clean"], by_string["cifar10_test_acc_200ep"].to_numpy() / 100)
        assert abs(kendall_tau(frame["accuracy"], frame["accuracy_clean"]) - tau) < NOISY_TAU_TOLERANCE
        assert frame["accuracy"].between(0, 1).all()
    # the noise is fixed by cell and seed, whatever else is in the batch; another seed, another draw
    some = SPACE.all_cells()[[5, 900, 15_000]]
    alone = noisy.evaluate(some, seed=1)["accuracy"].to_numpy()
    np.testing.assert_array_equal(alone, frame["accuracy"].to_numpy()[[5, 900, 15_000]])
    assert not np.array_equal(alone, noisy.evaluate(some, seed=0)["accuracy"].to_numpy())


def test_tau_one_serves_the_table_and_bad_tau_is_refused(backend, data_dir):
    frame = backend.evaluate(SPACE.all_cells())
    np.testing.assert_array_equal(frame["accuracy"], frame["accuracy_clean"])
    assert backend.options()["tau"] == 1.0
    with pytest.raises(ValueError, match=r"NB201Backend tau must be a real number in \(0, 1\], got 1.5"):
        NB201Backend(data_dir=data_dir, tau=1.5)


def test_env_var_names_the_data_dir(tmp_path, csv, monkeypatch):
    csv.head(3).to_csv(tmp_path / NB201_FILE, index=False)
    monkeypatch.setenv(NB201_DIR_ENV, str(tmp_path))
    assert find_nb201_table() == tmp_path / NB201_FILE
