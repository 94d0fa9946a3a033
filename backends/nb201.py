"""NAS-Bench-201 served through the evaluator protocol: a second, real search space.

The table (``nb201_acc_latency.csv``, see its README) holds, for each of the
15,625 cells of :class:`harness.nb201_space.NB201Space`, the test accuracy
after 200 epochs on three datasets (mean over the benchmark's runs) and the
inference latency in milliseconds on 27 device settings. It has no training
times, so the backend's cost is a latency column:

- ``accuracy``: the chosen dataset's test accuracy / 100;
- ``cost``: the chosen latency, in the table's unit (milliseconds), named
  by ``cost_name`` (e.g. ``lat_gold_6226``);
- ``train_time``: that latency in *seconds* (``cost / 1000``), so code that
  reads ``train_time`` (time regressors, the virtual clock) gets the cost
  target in the protocol's unit. It is not a training time.
- ``epochs``: always 200; ``seed`` is echoed and selects nothing but the
  noise draw when ``tau < 1`` (the table holds one mean value per cell).
- ``nb201_index``: the benchmark's own architecture index;
- ``accuracy_clean``: the table's accuracy (equal to ``accuracy`` unless
  ``tau < 1``).

A noisier evaluator of the same real landscape (``tau < 1``)
    The table's accuracies are seen through the Gaussian copula the
    surrogate uses (``harness.noise``): a cell's accuracy goes to its normal
    score under the empirical CDF of all 15,625 accuracies (ties at their
    mid-rank: the table has 5,735 distinct values), is mixed with a per-cell
    normal at correlation ``rho = sin(pi tau / 2)`` and mapped back, so
    Kendall's tau between noisy and real accuracy is ``tau`` in the
    population up to the ties (measured tau-b over all cells: within 0.005
    of ``tau`` for every seed tried, see ``tests/test_nb201.py``). The noise is
    hashed from the cell's key and ``seed`` (``harness.noise.hashed_normals``),
    so it does not depend on the batch, and another ``seed`` is another
    training run. With ``tau = 1`` (the default) ``accuracy`` is the table's.

The table is read from ``data_dir`` (a user's own copy), else the folder
named by the environment variable ``POPNAS_NB201_DIR``, else the copy
packaged in ``backends/data/nb201`` (with its licences and provenance), so
the backend works on a fresh install. A folder may hold the table as
parquet or as the original CSV.

"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from backends.table import raise_for_bad_rows
from harness.evaluator import Backend
from harness.nb201_space import NB201Batch, NB201Space
from harness.noise import GaussianCopula, check_tau, hashed_normals, mix, rho_for_tau

#: File name of the table inside a data folder, as CSV (the original export) or parquet (the packaged copy).
NB201_FILE = "nb201_acc_latency.csv"
NB201_PARQUET = "nb201_acc_latency.parquet"

#: Environment variable naming the data folder.
NB201_DIR_ENV = "POPNAS_NB201_DIR"

#: The packaged copy, used when neither ``data_dir`` nor the environment names a folder.
PACKAGED_NB201_DIR = Path(__file__).resolve().parent / "data" / "nb201"

#: Training epochs behind every accuracy of the table.
NB201_EPOCHS = 200

#: Accuracy columns are ``<dataset><ACCURACY_SUFFIX>``, in percent.
ACCURACY_SUFFIX = "_test_acc_200ep"

#: Latency columns are ``<COST_PREFIX><device>[_<batch>]``, in milliseconds.
COST_PREFIX = "lat_"

#: Salt of the accuracy noise stream (``tau < 1``), apart from every other hashed stream.
_SALT_ACCURACY_NOISE = 0x201ACC


def find_nb201_table(data_dir: str | os.PathLike | None = None) -> Path:
    """The table file: in ``data_dir``, else ``$POPNAS_NB201_DIR``, else the packaged copy.

    In a folder the parquet file is preferred over the CSV.
    """
    if data_dir is not None:
        folder, origin = Path(data_dir), "data_dir"
    elif os.environ.get(NB201_DIR_ENV):
        folder, origin = Path(os.environ[NB201_DIR_ENV]), f"${NB201_DIR_ENV}"
    else:
        folder, origin = PACKAGED_NB201_DIR, "the packaged copy"
    for name in (NB201_PARQUET, NB201_FILE):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"NAS-Bench-201 table not found: neither {folder / NB201_PARQUET} nor {folder / NB201_FILE} "
        f"exists (folder from {origin}). Pass data_dir= or set {NB201_DIR_ENV}."
    )


def load_nb201_table(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The checked NAS-Bench-201 table, in file order, plus a ``key`` column (the cell's space key).

    Checks: ``idx`` and ``arch_str`` present, every cell of the space exactly
    once, accuracies finite in [0, 100] and latencies finite and > 0.
    """
    path = find_nb201_table(data_dir)
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in ("idx", "arch_str") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    space = NB201Space()
    ops = space.parse_many(table["arch_str"], where=lambda i: f"{path} row {i + 1}, column 'arch_str'")
    keys = space.keys(ops)
    raise_for_bad_rows(str(path), table, "arch_str", pd.Series(keys).duplicated().to_numpy(),
                       "repeats a cell of an earlier row")
    if len(table) != space.num_cells:
        raise ValueError(f"{path}: {len(table)} rows, expected one per cell ({space.num_cells})")
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if column.endswith(ACCURACY_SUFFIX):
                bad = ~(np.isfinite(values) & (values >= 0) & (values <= 100))
                raise_for_bad_rows(str(path), table, column, bad, "is not an accuracy in [0, 100] %")
            elif column.startswith(COST_PREFIX):
                bad = ~(np.isfinite(values) & (values > 0))
                raise_for_bad_rows(str(path), table, column, bad, "is not a positive finite latency")
    return table.assign(key=keys)


class NB201Backend(Backend):
    """NAS-Bench-201 accuracies and latencies by table lookup; see the module docstring.

    Parameters
    ----------
    data_dir:
        folder of a user's own ``nb201_acc_latency.parquet`` or ``.csv``
        (default: ``$POPNAS_NB201_DIR``, then the packaged copy).
    dataset:
        ``"cifar10"``, ``"cifar100"`` or ``"imagenet16"`` (the table's accuracy columns).
    cost:
        the latency column served as ``cost`` and ``train_time``, e.g. ``"lat_gold_6226"``.
    tau:
        Kendall tau of the served accuracy to the table's, in ``(0, 1]`` (see the module docstring).
    """

    name: ClassVar[str] = "nb201"

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        dataset: str = "cifar10",
        cost: str = "lat_gold_6226",
        tau: float = 1.0,
    ) -> None:
        check_tau(tau, "NB201Backend tau")
        self.path = find_nb201_table(data_dir)
        #: ``None`` for the packaged copy, so provenance does not depend on where the package is installed
        self.data_dir = None if self.path.parent == PACKAGED_NB201_DIR else str(self.path.parent)
        table = load_nb201_table(self.path.parent)
        datasets = sorted(c.removesuffix(ACCURACY_SUFFIX) for c in table if c.endswith(ACCURACY_SUFFIX))
        if dataset not in datasets:
            raise ValueError(f"unknown dataset {dataset!r}; {self.path} has {datasets}")
        costs = sorted(c for c in table if c.startswith(COST_PREFIX))
        if cost not in costs:
            raise ValueError(f"unknown cost {cost!r}; {self.path} has {costs}")
        self.dataset = dataset
        self.cost = cost
        self.space = NB201Space()
        self.max_epochs = NB201_EPOCHS
        by_key = table.set_index("key").sort_index()  # row k is the cell of key k
        self._accuracy = by_key[dataset + ACCURACY_SUFFIX].to_numpy(np.float64) / 100.0
        self._cost = by_key[cost].to_numpy(np.float64)
        self._index = by_key["idx"].to_numpy(np.int64)
        self.tau = float(tau)
        # the whole population is the copula's reference: noisy and real accuracies share a marginal
        self._copula = GaussianCopula(self._accuracy, population=True) if self.tau < 1.0 else None

    def options(self) -> dict[str, Any]:
        """Settings recorded with every row."""
        return {"data_dir": self.data_dir, "dataset": self.dataset, "cost": self.cost, "tau": self.tau}

    def clean_accuracy(self, cells: NB201Batch | np.ndarray | Sequence[str | Sequence[int]]) -> np.ndarray:
        """The table's accuracies (fractions) of ``cells``, whatever ``tau``."""
        return self._accuracy[self.space.keys(self.as_batch(cells))]

    def as_batch(self, cells: NB201Batch | np.ndarray | Sequence[str | Sequence[int]]) -> NB201Batch:
        """``cells`` (strings, id sequences, an ``(n, 6)`` array or a batch) as a validated batch."""
        return self.space.batch(cells)

    def check_epochs(self, epochs: int | None) -> int:
        """200, the only fidelity in the table (``None`` means 200); anything else is an error."""
        if epochs is None or (isinstance(epochs, (int, np.integer)) and epochs == NB201_EPOCHS):
            return NB201_EPOCHS
        raise ValueError(
            f"epochs={epochs!r}: the NAS-Bench-201 table only has {NB201_EPOCHS}-epoch results"
        )

    def _evaluate(self, cells: NB201Batch, epochs: int, seed: int) -> dict[str, np.ndarray]:
        keys = self.space.keys(cells)
        cost = self._cost[keys]
        clean = self._accuracy[keys]
        accuracy = clean
        if self._copula is not None:
            noise = hashed_normals(keys, _SALT_ACCURACY_NOISE, seed)
            noisy = self._copula.from_normal(mix(self._copula.to_normal(clean), noise, rho_for_tau(self.tau)))
            accuracy = np.clip(noisy, 0.0, 1.0)
        return {
            "accuracy": accuracy,
            "accuracy_clean": clean,
            "train_time": cost / 1000.0,
            "cost": cost,
            "cost_name": np.full(len(keys), self.cost, dtype=object),
            "nb201_index": self._index[keys],
        }
