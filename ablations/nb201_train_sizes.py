"""Study ``nb201_train_sizes``: NAS-Bench-201 accuracy predictors and latency regressors at every
training-set size, beside the smaller-to-larger splits of :mod:`ablations.nb201_studies`.

A trial draws ``n`` cells uniformly from the whole space, fits a model on
them and scores its predictions on every other cell (15,625 - ``n``):

* ``kendall`` (tau-b) and ``spearman`` (rho) between predicted and true
  values;
* ``precision_at_<k>``: the share of the ``k`` cells ranked best by the
  prediction that are among the ``k`` truly best (best = most accurate, or
  fastest for latencies; ties in the truth broken by cell key);
* for latencies also ``mean_relative_error``.

Each ``(model, n)`` is repeated in ``trials`` trials (a new sample and model
seed each; every model of a trial sees the same cells). ``value`` is the
mean over trials, ``std_over_trials`` their spread, and ``ci_low`` /
``ci_high`` a percentile bootstrap interval of that mean over trials
(``n_boot`` resamples of the trials). The test set is almost the whole
space, so the trial-to-trial spread, not the test cells, is what the
interval measures.

Models are :func:`harness.predictors.nb201_accuracy_predictor` (accuracy,
target = the dataset's test accuracy) and
:func:`harness.regressors.nb201_time_regressor` (latency, target = a
device's latency; the block sum needs the empty cell and single-operator
cells, which a uniform sample lacks, so it is not offered here).
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ablations import figures
from ablations.nb201_studies import SMALL_XGB_GRID, SPACE, _check_names, _fit, _load
from ablations.report import TableSection
from backends.nb201 import ACCURACY_SUFFIX, COST_PREFIX
from harness.predictors import NB201_PREDICTORS, nb201_accuracy_predictor
from harness.regressors import NB201_TIME_REGRESSORS, nb201_time_regressor, relative_error
from harness.resolution import TIME_RESOLUTION, on_grid
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun
    from ablations.settings import NB201Settings

#: Training-set sizes of the sweep (8 to 1,000 cells).
DEFAULT_SIZES: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1000)

#: ``k`` of precision at top-k: the best 10 and 100 cells of the space.
DEFAULT_TOP_K: tuple[int, ...] = (10, 100)

#: Models of the sweep per target kind (the block sum is left out: see the module docstring).
SWEEP_MODELS: dict[str, tuple[str, ...]] = {
    "accuracy": NB201_PREDICTORS,
    "latency": tuple(name for name in NB201_TIME_REGRESSORS if name != "block_sum"),
}

#: Columns of :func:`nb201_train_sizes`' table, in order.
SWEEP_COLUMNS: tuple[str, ...] = ("target", "model", "n_train", "n_test", "metric", "value", "std_over_trials",
                                  "ci_low", "ci_high", "trials", "n_boot", "confidence")


def precision_at_k(predicted: np.ndarray, true: np.ndarray, k: int, higher_is_better: bool) -> float:
    """Share of the ``k`` best cells by ``predicted`` among the ``k`` best by ``true``.

    Orders are stable (ties keep cell order): on predictions given on a grid (:mod:`harness.resolution`)
    the result is the same on every machine.
    """
    sign = -1.0 if higher_is_better else 1.0
    best_predicted = np.argsort(sign * np.asarray(predicted, np.float64), kind="stable")[:k]
    best_true = np.argsort(sign * np.asarray(true, np.float64), kind="stable")[:k]
    return float(np.isin(best_predicted, best_true).sum() / k)


def _scores(predicted: np.ndarray, true: np.ndarray, top_k: Sequence[int], kind: str) -> dict[str, float]:
    """Rank scores of ``predicted`` against ``true`` (and, for latency, the mean relative error).

    ``kind`` is ``"accuracy"`` (higher is better) or ``"latency"`` (lower is better, in
    milliseconds). The ranks are read on the predictions' grid (:mod:`harness.resolution`), so
    predictions tied on paper are tied on every machine: the accuracy models give theirs on it, the
    latency regressors' are rounded to the time grid here.
    """
    accuracy = kind == "accuracy"
    ranked = predicted if accuracy else on_grid(predicted, TIME_RESOLUTION)
    with warnings.catch_warnings():
        # constant predictions (the mean regressor) have no correlation: NaN, left out of the means
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        scores = {"kendall": float(stats.kendalltau(ranked, true).statistic),
                  "spearman": float(stats.spearmanr(ranked, true).statistic)}
    scores.update({f"precision_at_{k}": precision_at_k(ranked, true, k, accuracy) for k in top_k})
    if not accuracy:
        scores["mean_relative_error"] = float(relative_error(true, predicted).mean())
    return scores


def nb201_train_sizes(
    data_dir: str | os.PathLike | None = None,
    target: str = "cifar10",
    models: Sequence[str] | None = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    trials: int = 10,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    xgboost_grid: Mapping[str, Sequence] | None = SMALL_XGB_GRID,
    progress: bool = False,
) -> pd.DataFrame:
    """The train-size sweep (see the module docstring); columns :data:`SWEEP_COLUMNS`.

    ``target`` is a dataset (``cifar10``, ``cifar100``, ``imagenet16``: accuracy
    predictors) or a latency column (``lat_...``: latency regressors);
    ``models`` names from :data:`SWEEP_MODELS` of that kind (default: all);
    ``xgboost_grid`` the latency XGBoost's cross-validation grid (default the
    2-setting :data:`ablations.nb201_studies.SMALL_XGB_GRID`; ``None`` is
    POPNAS's 288 settings, 1,440 fits a trial).
    """
    kind = "latency" if target.startswith(COST_PREFIX) else "accuracy"
    models = _check_names("models", SWEEP_MODELS[kind] if models is None else models, SWEEP_MODELS[kind])
    sizes = [check_integer("sizes", n, minimum=5) for n in sizes]  # the ensembles' 5 members need 5 cells
    top_k = [check_integer("top_k", k) for k in top_k]
    trials = check_integer("trials", trials)
    check_integer("n_boot", n_boot, minimum=2)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not sizes or max(sizes) + max(top_k, default=1) > SPACE.num_cells:
        raise ValueError(f"sizes must be non-empty and leave at least top_k test cells, got {sizes}")
    table = _load(data_dir)
    column = target if kind == "latency" else target + ACCURACY_SUFFIX
    if column not in table.columns:
        raise ValueError(f"unknown target {target!r}: the table has no column {column!r}")
    truth = table[column].to_numpy(np.float64) / (1.0 if kind == "latency" else 100.0)
    matrix = SPACE.to_matrix(SPACE.all_cells())

    per_trial: dict[tuple[str, int, str], list[float]] = {}
    work = [(n, t) for n in sizes for t in range(trials)]
    for n, t in tqdm(work, desc=f"nb201_train_sizes {target} (size, trial)", disable=not progress, leave=False):
        rng = np.random.default_rng([seed, n, t])
        train = np.sort(rng.choice(SPACE.num_cells, size=n, replace=False))
        test = np.setdiff1d(np.arange(SPACE.num_cells), train)
        model_seed = int(np.random.SeedSequence([seed, n, t]).generate_state(1)[0])
        for name in models:
            model = (nb201_accuracy_predictor(name, model_seed) if kind == "accuracy"
                     else nb201_time_regressor(name, xgboost_grid=xgboost_grid))
            predicted = _fit(model, matrix[train], truth[train]).predict(matrix[test])
            for metric, value in _scores(predicted, truth[test], top_k, kind).items():
                per_trial.setdefault((name, n, metric), []).append(value)

    rows = []
    boot = np.random.default_rng(seed)
    for (name, n, metric), values in per_trial.items():
        values = np.asarray(values)
        # NaN where a correlation is undefined (constant predictions, e.g. the mean regressor)
        means = np.nanmean(values[boot.integers(0, len(values), size=(n_boot, len(values)))], axis=1) \
            if np.isfinite(values).any() else np.full(n_boot, np.nan)
        tail = 100 * (1 - confidence) / 2
        low, high = (np.nanpercentile(means, [tail, 100 - tail]) if np.isfinite(means).any()
                     else (np.nan, np.nan))
        rows.append({"target": target, "model": name, "n_train": n, "n_test": SPACE.num_cells - n,
                     "metric": metric, "value": float(np.nanmean(values)) if np.isfinite(values).any() else np.nan,
                     "std_over_trials": float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else np.nan,
                     "ci_low": float(low), "ci_high": float(high), "trials": trials, "n_boot": n_boot,
                     "confidence": confidence})
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


# ---------------------------------------------------------------------------- report section
def section(run: PaperRun, cfg: NB201Settings) -> TableSection:
    """The train-size sweep of both NB201 model kinds: a table and one figure per target."""
    options = dict(cfg.train_sizes)
    targets = options.pop("targets", ["cifar10", "lat_gold_6226"])
    sweep = pd.concat([nb201_train_sizes(data_dir=cfg.data_dir, target=target, seed=run.settings.seed,
                                         **options) for target in targets], ignore_index=True)
    names = []
    for target, rows in sweep.groupby("target", sort=False):
        names.append(f"nb201_train_sizes_{target}.png")
        metrics = ["kendall", "spearman", *sorted(m for m in rows["metric"].unique() if m.startswith("precision"))]
        figures.train_size_curves(rows, metrics, run.figure(names[-1]),
                                  f"NAS-Bench-201 {target}: models against training-set size")
    notes = ("Each trial fits a model on a uniform random sample of `n_train` cells and scores it on every "
             "other cell of the space (the smaller-to-larger splits are in the two tables above). `value` is "
             "the mean over trials, `ci_low`/`ci_high` a percentile bootstrap interval of that mean over "
             "trials; precision at k is the share of the k best cells by prediction among the k truly best. "
             "Latency models leave out the block sum (a uniform sample lacks its one-operator cells). See "
             "`ablations/nb201_train_sizes.py`.")
    return TableSection("nb201_train_sizes", "NAS-Bench-201 predictors and regressors at every training-set size",
                        sweep, notes=notes, settings={"targets": targets, **options}, figures=tuple(names))
