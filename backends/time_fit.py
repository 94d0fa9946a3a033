"""Fit the surrogate's training-time model to a measured table, by least squares.

The surrogate (:mod:`backends.surrogate`) times a cell of ``b`` blocks at
``e`` epochs as::

    time = e * (overhead + growth(b) * sum over the 2b branches of (cost[op] + input_cost * [input is -2]))
    growth(b) = 1 + g * (b - 1)

with log-normal noise whose scale makes Kendall's tau between measured and
model times ``time_tau``. :func:`fit_time_model` fits ``cost`` (one per
operator, seconds per epoch), ``input_cost``, ``overhead`` and ``g`` to the
``train_time`` of every row of a measured table, minimising the squared
*log* residuals (so every cell weighs by its relative error, as POPNAS's
regressors are judged), with ``scipy.optimize.least_squares`` from the
linear (``g = 0``) non-negative least-squares solution. The noise level is
what the model does not explain: ``time_tau`` is tau between the measured
times and the fitted model's, ``log_residual_sd`` the residuals' spread.

The fitted constants and their source (table, its recording provenance,
fit errors per block count) are stored as JSON in ``backends/data``
(:data:`FITTED_CONSTANTS`), where the surrogate reads its defaults. Refit
after re-recording the table with::

    python -m backends.time_fit --table backends/data/measured_digits_cpu.parquet
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls
from scipy.stats import kendalltau

from harness.operators import NUM_OPERATORS, PNAS_ORDER
from harness.space import EMPTY, CellSpace
from harness.store import atomic_write_text

#: Where the surrogate's fitted time constants live.
FITTED_CONSTANTS = Path(__file__).resolve().parent / "data" / "surrogate_time_constants.json"


@dataclass(frozen=True)
class TimeConstants:
    """The surrogate's time model (module docstring), all times in seconds per epoch.

    ``operator_costs`` maps each operator of :data:`PNAS_ORDER` to the cost
    of one branch using it; ``source`` says what they were fitted to.
    """

    operator_costs: dict[str, float]
    input_cost: float
    overhead: float
    growth: float
    time_tau: float
    log_residual_sd: float
    source: dict[str, Any]

    def costs_by_id(self) -> np.ndarray:
        """The operator costs as an array indexed by global operator id."""
        return np.array([self.operator_costs[op] for op in PNAS_ORDER], np.float64)


def branch_features(cells, space: CellSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: ``(n, 8)`` branches per operator, branches reading input ``-2``, and the block count."""
    blocks = cells.blocks.astype(np.int64)
    used = blocks[..., 1] != EMPTY
    per_op = np.zeros((len(cells), NUM_OPERATORS))
    far = np.zeros(len(cells))
    for in_col, op_col in ((0, 1), (2, 3)):
        for op in range(NUM_OPERATORS):
            per_op[:, op] += ((blocks[..., op_col] == op) & used).sum(axis=1)
        far += ((blocks[..., in_col] == -2) & used).sum(axis=1)
    return per_op, far, cells.num_blocks.astype(np.float64)


def model_times(constants: TimeConstants | np.ndarray, per_op: np.ndarray, far: np.ndarray,
                blocks: np.ndarray) -> np.ndarray:
    """Seconds per epoch of the model for :func:`branch_features` (``constants`` or a parameter vector
    ``[8 costs, input_cost, overhead, growth]``)."""
    if isinstance(constants, TimeConstants):
        theta = np.concatenate([constants.costs_by_id(),
                                [constants.input_cost, constants.overhead, constants.growth]])
    else:
        theta = constants
    branch_cost = per_op @ theta[:NUM_OPERATORS] + far * theta[NUM_OPERATORS]
    return theta[NUM_OPERATORS + 1] + branch_cost * (1.0 + theta[NUM_OPERATORS + 2] * np.maximum(blocks - 1, 0))


def fit_time_model(table: pd.DataFrame, space: CellSpace, source: dict[str, Any] | None = None
                   ) -> TimeConstants:
    """Least-squares :class:`TimeConstants` for the ``cell``, ``epochs`` and ``train_time`` of ``table``.

    Rows must be cells of ``space`` with positive finite times; ``source``
    is stored with the constants, completed with the fit's errors.
    """
    missing = [c for c in ("cell", "epochs", "train_time") if c not in table.columns]
    if missing:
        raise ValueError(f"a measured table to fit needs the columns {missing}")
    seconds = table["train_time"].to_numpy(np.float64) / table["epochs"].to_numpy(np.float64)
    if len(table) < NUM_OPERATORS + 3 or not (np.isfinite(seconds) & (seconds > 0)).all():
        raise ValueError(f"fitting the time model needs at least {NUM_OPERATORS + 3} rows with positive "
                         f"finite train_time and epochs, got {len(table)} rows")
    cells = space.parse_many(table["cell"].tolist())
    per_op, far, blocks = branch_features(cells, space)
    # start: the linear model (no growth) by non-negative least squares on relative errors
    design = np.column_stack([per_op, far, np.ones(len(table))]) / seconds[:, None]
    linear, _ = nnls(design, np.ones(len(table)))
    start = np.concatenate([np.maximum(linear, 1e-4), [0.0]])
    lower = np.concatenate([np.zeros(NUM_OPERATORS + 1), [1e-6], [-0.9 / max(space.max_blocks - 1, 1)]])
    fit = least_squares(lambda theta: np.log(model_times(theta, per_op, far, blocks)) - np.log(seconds),
                        start, bounds=(lower, np.full(len(start), np.inf)))
    predicted = model_times(fit.x, per_op, far, blocks)
    relative = np.abs(predicted - seconds) / seconds
    by_blocks = {int(b): float(relative[blocks == b].mean()) for b in np.unique(blocks)}
    report = {**(source or {}), "rows": int(len(table)), "mean_relative_error": float(relative.mean()),
              "median_relative_error": float(np.median(relative)),
              "mean_relative_error_by_blocks": by_blocks}
    residuals = np.log(predicted) - np.log(seconds)
    return TimeConstants(
        operator_costs={op: float(c) for op, c in zip(PNAS_ORDER, fit.x[:NUM_OPERATORS])},
        input_cost=float(fit.x[NUM_OPERATORS]),
        overhead=float(fit.x[NUM_OPERATORS + 1]),
        growth=float(fit.x[NUM_OPERATORS + 2]),
        time_tau=float(kendalltau(predicted, seconds).statistic),
        log_residual_sd=float(residuals.std(ddof=fit.x.size)),
        source=report,
    )


def save_constants(constants: TimeConstants, path: Path = FITTED_CONSTANTS) -> None:
    """Write ``constants`` as JSON, atomically."""
    atomic_write_text(path, json.dumps(asdict(constants), indent=2) + "\n")


def load_constants(path: Path = FITTED_CONSTANTS) -> TimeConstants:
    """The constants stored at ``path`` (by default the surrogate's), checked."""
    data = json.loads(Path(path).read_text())
    expected = {f for f in TimeConstants.__dataclass_fields__}
    if set(data) != expected or set(data["operator_costs"]) != set(PNAS_ORDER):
        raise ValueError(f"{path} is not a time-constants file: keys {sorted(data)}")
    return TimeConstants(**data)


def main(argv: list[str] | None = None) -> None:
    """``python -m backends.time_fit --table T.parquet [--out C.json]``: fit and store the constants."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True, help="a measured table (parquet) with a JSON sidecar")
    parser.add_argument("--out", type=Path, default=FITTED_CONSTANTS)
    # the committed constants: the PNAS and POPNAS runs, recorded side by side on one machine at one time;
    # a search added later was timed under other machine conditions (see the table's drift provenance)
    parser.add_argument("--strategies", default="pnas,popnas",
                        help="comma-separated recorded searches to fit on (the table's strategy column)")
    args = parser.parse_args(argv)
    table = pd.read_parquet(args.table)
    if "strategy" in table.columns:
        chosen = args.strategies.split(",")
        unknown = sorted(set(chosen) - set(table["strategy"].astype(str)))
        if unknown:
            raise ValueError(f"--strategies: {unknown} not in {args.table} (it holds "
                             f"{sorted(table['strategy'].astype(str).unique())})")
        table = table[table["strategy"].isin(chosen)].reset_index(drop=True)
    sidecar = args.table.with_suffix(".json")
    provenance = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    settings = provenance.get("settings", {})
    space = CellSpace.pnas(max_blocks=int(settings.get("max_blocks", table["blocks"].max())))
    source = {"table": args.table.name, "strategies": args.strategies, "clock": provenance.get("clock", "wall"),
              "table_settings": settings,
              "table_commits": (sorted(table["git_commit"].astype(str).unique().tolist()) if "git_commit" in table
                                else [provenance.get("environment", {}).get("git_commit")])}
    constants = fit_time_model(table, space, source)
    save_constants(constants, args.out)
    print(json.dumps(asdict(constants), indent=2))


if __name__ == "__main__":
    main()
