"""A user's own table: NAS-Bench-101 graphs as JSON adjacency and operator lists, PNAS and NB201 cells as
text; repeats averaged or kept; schema errors naming file, row and column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from backends.user_table import load_user_table
from harness import CellSpace
from harness.nb101_space import NB101Space
from harness.nb201_space import NB201Space

CHAIN = ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
# one graph drawn twice with its two inner vertices swapped
DRAWN_A = ([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
           ["input", "conv1x1-bn-relu", "maxpool3x3", "output"])
DRAWN_B = ([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
           ["input", "maxpool3x3", "conv1x1-bn-relu", "output"])


def nb101_rows():
    return pd.DataFrame({
        "adjacency": [json.dumps(m) for m, _ in (CHAIN, CHAIN, DRAWN_A, DRAWN_B)],
        "operators": ["|".join(o) for _, o in (CHAIN, CHAIN, DRAWN_A, DRAWN_B)],
        "accuracy": [0.8, 0.9, 0.7, 0.75],
        "train_time": [10.0, 12.0, 20.0, 22.0],
        "repeat": [0, 1, 0, 1],
        "energy": [1.0, 3.0, 5.0, 7.0],
    })


def test_nb101_csv_repeats_are_averaged_and_isomorphic_drawings_are_one_cell(tmp_path):
    path = tmp_path / "mine.csv"
    nb101_rows().to_csv(path, index=False)
    table = load_user_table(path, space="nb101")
    assert len(table) == 2 and list(table["runs"]) == [2, 2]
    chain = table[table["blocks"] == 1].iloc[0]
    assert chain["cell"] == "input|conv3x3-bn-relu|output;0>1,1>2"
    assert chain["accuracy"] == pytest.approx(0.85) and chain["train_time"] == pytest.approx(11.0)
    assert chain["energy"] == pytest.approx(2.0)
    kept = load_user_table(path, space="nb101", runs="keep")
    assert len(kept) == 4 and (kept["runs"] == 1).all() and sorted(kept["run_seed"]) == [0, 0, 1, 1]
    space = NB101Space()
    assert space.format(space.parse_many(list(table["cell"]))) == list(table["cell"])


def test_nb101_parquet_with_list_columns_and_no_repeat_column(tmp_path):
    rows = nb101_rows().drop(columns="repeat")
    rows["adjacency"] = [m for m, _ in (CHAIN, CHAIN, DRAWN_A, DRAWN_B)]
    rows["operators"] = [o for _, o in (CHAIN, CHAIN, DRAWN_A, DRAWN_B)]
    path = tmp_path / "mine.parquet"
    rows.to_parquet(path)
    kept = load_user_table(path, space="nb101", runs="keep")
    assert sorted(kept["run_seed"]) == [0, 0, 1, 1]  # runs numbered per cell in file order


def test_pnas_and_nb201_tables_use_the_cell_text(tmp_path):
    pnas = CellSpace.pnas(max_blocks=3)
    cells = pnas.format(pnas.sample(6, 2, seed=0))
    pd.DataFrame({"cell": cells, "accuracy": 0.5, "train_time": np.arange(1.0, 7.0)}).to_csv(tmp_path / "p.csv")
    table = load_user_table(tmp_path / "p.csv", space="pnas", max_blocks=3)
    assert sorted(table["cell"]) == sorted(cells) and (table["blocks"] == 2).all()
    nb201 = NB201Space().format(NB201Space().sample(4, 3, seed=0))
    pd.DataFrame({"cell": nb201, "accuracy": 0.5, "train_time": 1.0}).to_csv(tmp_path / "n.csv", index=False)
    assert (load_user_table(tmp_path / "n.csv", space="nb201")["blocks"] == 3).all()


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(accuracy=[0.8, 0.9, 75.0, 0.7]), r"mine.csv row 3, column 'accuracy': 75.0"),
    (lambda f: f.assign(train_time=[1.0, -2.0, 1.0, 1.0]), r"row 2, column 'train_time': -2.0 is not a positive"),
    (lambda f: f.drop(columns="train_time"), "missing column 'train_time'"),
    (lambda f: f.drop(columns="operators"), r"needs a 'cell' column or both 'adjacency' and 'operators'"),
    (lambda f: f.assign(operators=["|".join(CHAIN[1])] * 2 + ["|".join(DRAWN_A[1]),
                                                 "input|conv9x9|maxpool3x3|output"]),
     r"mine.csv row 4, column 'operators': unknown operator 'conv9x9' at vertex 1"),
    (lambda f: f.assign(adjacency=[json.dumps(CHAIN[0])] * 2 + ["[[0,1],[0"] + [json.dumps(DRAWN_B[0])]),
     r"mine.csv row 3, column 'adjacency': the adjacency '\[\[0,1\],\[0' is not JSON"),
    (lambda f: f.assign(adjacency=[json.dumps(CHAIN[0])] * 2 + [json.dumps(DRAWN_A[0]),
                                                 "[[0,1,0,0],[0,0,0,0],[0,0,0,1],[0,0,0,0]]"]),
     r"mine.csv row 4, column 'adjacency': .*no path from input to output"),
    (lambda f: f.assign(adjacency=[json.dumps(CHAIN[0])] * 2 + [json.dumps(DRAWN_A[0]), "[[0,1],[0,0]]"]),
     r"row 4, column 'adjacency': the adjacency has shape \(2, 2\) but there are 4 operators"),
])
def test_schema_errors_name_file_row_and_column(tmp_path, change, message):
    path = tmp_path / "mine.csv"
    change(nb101_rows()).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        load_user_table(path, space="nb101")


def test_unknown_space_and_run_policy(tmp_path):
    path = tmp_path / "mine.csv"
    nb101_rows().to_csv(path, index=False)
    with pytest.raises(ValueError, match="unknown table space 'darts'"):
        load_user_table(path, space="darts")
    with pytest.raises(ValueError, match="runs must be one of"):
        load_user_table(path, runs="median")
    with pytest.raises(ValueError, match="missing column 'cell'"):
        load_user_table(path, space="pnas")
