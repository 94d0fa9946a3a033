"""POPNAS's and PNAS's predictor questions asked of a user's own results table (any space the harness knows).

The table is loaded by :func:`backends.user_table.load_user_table` (repeats
averaged by default), and the cell *size* plays the block count: blocks for
PNAS/POPNAS cells, non-``none`` operators for NAS-Bench-201, operator vertices
for NAS-Bench-101-style graphs.

Time regressors (:func:`time_regressor_ablation`, POPNAS 4.1's protocol)
    For each size ``s`` with enough cells, every regressor is fitted on the
    cells of size ``<= s`` and predicts the time of the cells of size
    ``s + 1`` (the step, ``blocks`` in the tables, is ``s + 1``).
    ``proper`` scores the step alone, ``progressive`` pools every step up to
    it (:func:`ablations.popnas_time_regressors.proper_and_progressive`):
    the mean relative error and Kendall's tau-b of predicted against real
    time. Regressors: the block sum (POPNAS's heuristic, or its analogue
    for the space: parent's time plus the last operator's cost), Ridge, NNLS
    and XGBoost on the space's features, ``cost_nnls`` (NNLS on the
    network's analytic parameter count and FLOPs,
    :class:`harness.cost_features.CostFeatures`) and ``mean`` (the
    training mean, a floor any model should beat). A regressor that cannot
    be fitted on a table (the block sum needs the smallest cells) is left
    out and named in ``skipped``.

Accuracy predictors (:func:`accuracy_predictor_ablation`)
    ``next_size`` (PNAS's extrapolation): fit on the cells of size ``<= s``,
    rank the cells of size ``s + 1``; ``random`` (several train sizes): fit
    on ``n`` random cells, rank all the others. Each is repeated in
    ``trials`` trials (new model seeds; new cells for ``random``) and
    scored by Spearman's rho and Kendall's tau-b with
    :func:`ablations.pnas_table1.trial_mean_correlation` (the mean over
    trials with a two-level bootstrap interval). Predictors come from
    :func:`harness.search_space.accuracy_predictor` for the table's space.

:func:`run_table_ablation` writes both, with figures and a ``report.md``;
the ``table_ablation`` experiment (``popnas-harness experiment=table_ablation
table.path=... table.space=nb101``) calls it. Everything is a plain function
of a DataFrame, so notebooks call the same code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ablations import figures
from ablations.nb201_studies import SMALL_XGB_GRID, _check_names
from ablations.pnas_table1 import check_integer, spread_over_trials, trial_mean_correlation
from ablations.popnas_time_regressors import proper_and_progressive, time_model
from ablations.report import TableSection, write_report
from backends.user_table import load_user_table, user_table_space
from harness.cost_features import CostFeatures
from harness.metrics import METHODS, correlation_table
from harness.nb101_features import nb101_time_regressor
from harness.nb201_space import NB201Space
from harness.predictors import fit_quietly
from harness.regressors import feature_time_regressor, nb201_time_regressor, relative_error
from harness.search_space import accuracy_predictor
from harness.space import CellSpace
from harness.store import atomic_write_frame

#: The time regressors of :func:`time_regressor_ablation`, in table order.
TIME_REGRESSORS: tuple[str, ...] = ("block_sum", "ridge", "nnls", "xgboost", "cost_nnls", "mean")

#: Default accuracy predictors per space (PNAS's MLP on PNAS cells; the tabular models elsewhere).
DEFAULT_PREDICTORS: dict[str, tuple[str, ...]] = {
    "pnas": ("mlp",), "popnas": ("mlp",), "nb201": ("ridge", "xgboost", "mlp"), "nb101": ("ridge", "xgboost", "mlp"),
}

#: Training-set sizes of the ``random`` split (those that leave fewer than 3 test cells are dropped).
DEFAULT_TRAIN_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256)

#: Fewest training cells a step or split needs (XGBoost's 5-fold cross-validation, PNAS's 5-member ensembles).
MIN_TRAIN = 5

#: Columns of :func:`accuracy_predictor_ablation`'s table, in order.
PREDICTOR_COLUMNS: tuple[str, ...] = (
    "predictor", "split", "fit_blocks", "eval_blocks", "n_train", "n_test", "trials", "method", "value",
    "std_over_trials", "std_error", "ci_low", "ci_high", "n", "n_boot", "confidence",
)


def time_regressors(space_name: str, space: Any, names: Sequence[str] = TIME_REGRESSORS,
                    xgboost_grid: Mapping[str, Sequence] | None = SMALL_XGB_GRID,
                    cost_network: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The unfitted time regressors ``names`` (:data:`TIME_REGRESSORS`) on ``space.to_matrix`` rows."""
    names = _check_names("regressors", names, TIME_REGRESSORS)
    cost_space = space.name if isinstance(space, CellSpace) else space_name
    models = {}
    for name in names:
        if space_name == "nb101":
            models[name] = nb101_time_regressor(name, xgboost_grid=xgboost_grid, cost_options=cost_network)
        elif name == "cost_nnls":
            models[name] = feature_time_regressor("nnls", CostFeatures(space=cost_space, network=cost_network))
        elif space_name == "nb201":
            models[name] = nb201_time_regressor(name, xgboost_grid=xgboost_grid)
        elif name == "mean":
            models[name] = feature_time_regressor("mean", None)
        else:
            options = {"param_grid": dict(xgboost_grid)} if name == "xgboost" and xgboost_grid else {}
            models[name] = time_model(name, "standard", space, **options).estimator
    return models


def _cells_and_matrix(table: pd.DataFrame, space: Any) -> tuple[Any, np.ndarray]:
    cells = space.parse_many(list(table["cell"]))
    return cells, space.to_matrix(cells)


def time_regressor_ablation(table: pd.DataFrame, space_name: str, space: Any | None = None,
                            regressors: Sequence[str] = TIME_REGRESSORS,
                            xgboost_grid: Mapping[str, Sequence] | None = SMALL_XGB_GRID,
                            cost_network: Mapping[str, Any] | None = None
                            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """POPNAS's protocol with size as the step (module docstring) on a loaded table.

    ``table`` has ``cell``, ``blocks`` and ``train_time`` (one row per cell:
    :func:`~backends.user_table.load_user_table`'s mean rows). Returns the
    summary (``regressor, evaluation, blocks, mean_relative_error, n,
    kendall_tau``), the per-prediction rows (``regressor, step, blocks,
    cell, real, predicted, relative_error``) and ``skipped`` (``regressor,
    step, reason``).
    """
    space = user_table_space(space_name) if space is None else space
    models = time_regressors(space_name, space, regressors, xgboost_grid, cost_network)
    _, matrix = _cells_and_matrix(table, space)
    size, time = table["blocks"].to_numpy(), table["train_time"].to_numpy(np.float64)
    frames, skipped = [], []
    for step in sorted(int(b) for b in np.unique(size) if b - 1 in set(size.tolist())):
        train, target = size < step, size == step
        if train.sum() < MIN_TRAIN:
            skipped.append({"regressor": "all", "step": step, "reason": f"only {int(train.sum())} training cells"})
            continue
        for name, model in models.items():
            try:
                fitted = fit_quietly(model, matrix[train], time[train])
            except ValueError as err:
                if name != "block_sum":
                    raise
                skipped.append({"regressor": name, "step": step, "reason": str(err)})
                continue
            predicted = np.asarray(fitted.predict(matrix[target]), np.float64)
            frames.append(pd.DataFrame({
                "regressor": name, "step": step, "blocks": step, "cell": table["cell"].to_numpy()[target],
                "real": time[target], "predicted": predicted,
                "relative_error": relative_error(time[target], predicted),
            }))
    if not frames:
        raise ValueError(f"the table has no size s + 1 with at least {MIN_TRAIN} cells of size <= s to fit on "
                         f"(sizes present: {sorted(set(size.tolist()))})")
    predictions = pd.concat(frames, ignore_index=True)
    summary = proper_and_progressive(predictions, ["regressor"], kendall=True)
    return summary, predictions, pd.DataFrame(skipped, columns=["regressor", "step", "reason"])


def accuracy_predictor_ablation(table: pd.DataFrame, space_name: str, space: Any | None = None,
                                predictors: Sequence[str] | None = None,
                                train_sizes: Sequence[int] = DEFAULT_TRAIN_SIZES, trials: int = 3,
                                methods: Sequence[str] = METHODS, n_boot: int = 200, confidence: float = 0.95,
                                seed: int = 0, predictor_options: Mapping[str, Mapping[str, Any]] | None = None
                                ) -> pd.DataFrame:
    """Rank correlations of accuracy predictors on the next size and at several train sizes (module docstring).

    Columns: :data:`PREDICTOR_COLUMNS`. ``predictor_options`` maps a
    predictor name to options of :func:`harness.search_space.accuracy_predictor`.
    On PNAS/POPNAS cells the empty cell is left out (PNAS's predictors read
    blocks; POPNAS uses it for time only).
    """
    space = user_table_space(space_name) if space is None else space
    predictors = tuple(DEFAULT_PREDICTORS[space_name] if predictors is None else predictors)
    trials = check_integer("trials", trials)
    check_integer("n_boot", n_boot, minimum=2)
    methods = _check_names("methods", methods, METHODS)
    options = {name: dict((predictor_options or {}).get(name, {})) for name in predictors}
    if isinstance(space, CellSpace):  # PNAS's predictors read blocks: the empty cell is a time row only
        table = table[table["blocks"] > 0].reset_index(drop=True)
    cells, _ = _cells_and_matrix(table, space)
    accuracy, size = table["accuracy"].to_numpy(np.float64), table["blocks"].to_numpy()
    everything = np.arange(len(table))
    splits = [("next_size", int(b), np.flatnonzero(size <= b), np.flatnonzero(size == b + 1))
              for b in np.unique(size)]
    splits += [("random", n, None, None) for n in (check_integer("train_sizes", n, MIN_TRAIN) for n in train_sizes)
               if n <= len(table) - 3]
    scored: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
    for split, b, train, test in splits:
        if split == "next_size" and (len(train) < MIN_TRAIN or len(test) < 3):
            continue
        for t in range(trials):
            if split == "random":
                draw = np.random.default_rng([seed, b, t])
                train = np.sort(draw.choice(len(table), size=b, replace=False))
                test = np.setdiff1d(everything, train)
            model_seed = int(np.random.SeedSequence([seed, b, t, split == "random"]).generate_state(1)[0])
            for name in predictors:
                model = accuracy_predictor(space, name, seed=model_seed, **options[name])
                model = _fit_predictor(model, cells.take(train), accuracy[train])
                key = (name, split, b if split == "next_size" else None, len(train), len(test))
                scored.setdefault(key, []).append((model.predict(cells.take(test)), accuracy[test]))
    if not scored:
        raise ValueError(f"the table's {len(table)} cells allow no split with {MIN_TRAIN} training and 3 test cells")
    rows = []
    for (name, split, b, n_train, n_test), pairs in scored.items():
        for method in methods:
            estimate, values = trial_mean_correlation(pairs, method=method, n_boot=n_boot, confidence=confidence,
                                                      seed=seed, common_cells=split == "next_size")
            rows.append(({"predictor": name, "split": split, "fit_blocks": b,
                          "eval_blocks": None if b is None else b + 1, "n_train": n_train, "n_test": n_test,
                          "trials": trials, "std_over_trials": spread_over_trials(values)}, estimate))
    frame = correlation_table(rows)
    frame[["fit_blocks", "eval_blocks"]] = frame[["fit_blocks", "eval_blocks"]].astype("Int64")
    return frame[list(PREDICTOR_COLUMNS)]


def _fit_predictor(model: Any, cells: Any, accuracy: np.ndarray) -> Any:
    """``model`` fitted on a batch: the searches' predictors fit on batches themselves."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fixed-epoch MLPs end at max_iter by design
        return model.fit(cells, accuracy)


def correlation_curves(frame: pd.DataFrame, path: str | Path, title: str, method: str = "kendall") -> Path:
    """``method``'s correlation against the training-set size per predictor (``random`` split), with the
    bootstrap interval as a band."""
    rows = frame[(frame["split"] == "random") & (frame["method"] == method)]
    figure = figures.new_figure(5.5, 3.8)
    axes = figure.add_subplot(1, 1, 1)
    for name, group in rows.groupby("predictor", sort=False):
        group = group.sort_values("n_train")
        axes.plot(group["n_train"], group["value"], marker="o", label=name)
        axes.fill_between(group["n_train"], group["ci_low"], group["ci_high"], alpha=0.2)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("training cells")
    axes.set_ylabel(f"{method} (predicted vs real accuracy)")
    axes.set_title(title)
    if len(rows):
        axes.legend(fontsize=7)
    return figures.save_figure(figure, path)


def run_table_ablation(path: str | os.PathLike, output_dir: str | os.PathLike, space: str = "nb101",
                       runs: str = "mean", max_blocks: int | None = None, max_vertices: int | None = None,
                       regressors: Sequence[str] = TIME_REGRESSORS, predictors: Sequence[str] | None = None,
                       train_sizes: Sequence[int] = DEFAULT_TRAIN_SIZES, trials: int = 3, n_boot: int = 200,
                       seed: int = 0, xgboost_grid: Mapping[str, Sequence] | None = SMALL_XGB_GRID,
                       cost_network: Mapping[str, Any] | None = None,
                       predictor_options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, pd.DataFrame]:
    """Both ablations on the table at ``path``: ``tables/*.csv``, ``figures/*.png`` and ``report.md`` in
    ``output_dir``; returns the tables by id.

    ``runs`` is how repeats are combined for the time regressors and the
    predictors (``"mean"``; ``"keep"`` fits on every run, so a cell's runs
    may fall on both sides of a random split). Other arguments are those of
    :func:`time_regressor_ablation` and :func:`accuracy_predictor_ablation`.
    """
    output_dir = Path(output_dir)
    cell_space = user_table_space(space, max_blocks, max_vertices)
    table = load_user_table(path, space, runs=runs, max_blocks=max_blocks, max_vertices=max_vertices)
    summary, predictions, skipped = time_regressor_ablation(table, space, cell_space, regressors, xgboost_grid,
                                                             cost_network)
    ranking = accuracy_predictor_ablation(table, space, cell_space, predictors, train_sizes, trials,
                                          n_boot=n_boot, seed=seed, predictor_options=predictor_options)
    sizes = (table.groupby("blocks").agg(cells=("cell", "size"), runs=("runs", "sum"),
                                         mean_accuracy=("accuracy", "mean"), mean_train_time=("train_time", "mean"))
             .reset_index())
    figures.predicted_versus_real(predictions, "regressor", output_dir / "figures" / "time_regressors.png",
                                  f"Time regressors on {Path(path).name} ({space})")
    correlation_curves(ranking, output_dir / "figures" / "predictor_train_sizes.png",
                       f"Accuracy predictors on {Path(path).name} ({space})")
    setting = {"table": str(path), "space": space, "runs": runs, "seed": seed}
    sections = [
        TableSection("table_sizes", "The table: cells and runs per size", sizes, settings=setting,
                     notes="Size: blocks (PNAS/POPNAS), non-none operators (NAS-Bench-201) or operator vertices "
                           "(NAS-Bench-101, vertices minus 2)."),
        TableSection("table_time_regressors", "Time regressors, fitted on sizes <= s, predicting size s + 1",
                     summary, settings={**setting, "xgboost grid": xgboost_grid or "POPNAS full grid",
                                        "cost network": dict(cost_network or {}) or "the space's default"},
                     figures=("time_regressors.png",),
                     notes="'blocks' is the size predicted; proper: that step alone, progressive: every step up to "
                           "it. kendall_tau: Kendall's tau-b of predicted against real time. cost_nnls is NNLS on "
                           "the network's analytic parameter count and FLOPs."
                           + (" Skipped: " + "; ".join(f"{r.regressor} at step {r.step} ({r.reason})"
                                                        for r in skipped.itertuples()) if len(skipped) else "")),
        TableSection("table_predictor_ranking", "Accuracy predictors: rank correlation on unseen cells", ranking,
                     settings={**setting, "trials": trials, "n_boot": n_boot}, figures=("predictor_train_sizes.png",),
                     notes="next_size: fitted on sizes <= fit_blocks, ranking every cell of size eval_blocks; "
                           "random: fitted on n_train random cells, ranking the rest. value: the mean over trials; "
                           "the interval is a two-level bootstrap over trials and test cells."),
    ]
    write_report(output_dir, sections, f"# Ablations on {Path(path).name} ({space} space)\n\n"
                 "POPNAS's time-regressor protocol and PNAS's predictor-ranking question, with the cell size as "
                 "the step (ablations/table_ablation.py).")
    atomic_write_frame(predictions, output_dir / "tables" / "table_time_predictions.csv")
    return {"table_sizes": sizes, "table_time_regressors": summary, "table_predictor_ranking": ranking,
            "table_time_predictions": predictions, "table_skipped": skipped}


__all__ = ["DEFAULT_PREDICTORS", "DEFAULT_TRAIN_SIZES", "PREDICTOR_COLUMNS", "TIME_REGRESSORS",
           "accuracy_predictor_ablation", "correlation_curves", "run_table_ablation", "time_regressor_ablation",
           "time_regressors"]
