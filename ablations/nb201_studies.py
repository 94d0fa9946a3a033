"""Studies ``nb201_time_regressors`` and ``nb201_predictor_ranking``: the POPNAS and PNAS predictor
questions asked again on NAS-Bench-201's real measurements.

NAS-Bench-201 cells have 6 edges, each carrying one of 5 operators, ``none``
removing the edge. The count of non-``none`` operators (0..6) stands in for a
PNAS cell's block count: "a cell one block larger" is a cell with one more
operator. Level sizes: 1, 24, 240, 1,280, 3,840, 6,144 and 4,096 cells.

Features (:class:`harness.encodings.NB201Features`, both studies)
    ``"onehot"`` (default): for each edge, one indicator per operator other
    than ``none`` (24 columns; ``none`` is the all-zero reference, so a
    linear model's coefficient is the cost of putting that operator on
    that edge instead of nothing), then the operator count. ``"index"``: the
    count and the 6 operator ids (the benchmark's order ``none,
    skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``), the analogue
    of POPNAS's "standard" categorical encoding. Both read the
    ``(n, 7)`` matrix of :meth:`NB201Space.to_matrix`.

Cost (one CPU core)
    ``nb201_time_regressors(repetitions=3, xgboost_grid=SMALL_XGB_GRID)``
    takes about 20 s (the main job's setting; POPNAS's full XGBoost grid
    is 144 times as many fits); ``nb201_predictor_ranking(trials=2,
    n_boot=200)`` about 50-70 s, mostly the 72 MLP fits (the ensemble's
    five members each), a quarter the Kendall bootstraps of the large test
    sets (scipy once per resample beyond 2,000 pairs).

Data
    Both studies load the table with :func:`backends.nb201.load_nb201_table`:
    the packaged copy by default, or a user's own copy in ``data_dir``
    (a missing one raises :class:`FileNotFoundError` naming where it looked,
    before any work).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ablations.pnas_table1 import spread_over_trials, trial_mean_correlation
from ablations.popnas_time_regressors import proper_and_progressive
from ablations.report import TableSection
from backends.nb201 import ACCURACY_SUFFIX, COST_PREFIX, load_nb201_table
from harness.metrics import METHODS, correlation_table
from harness.nb201_space import NUM_EDGES, NB201Space
from harness.predictors import ENSEMBLE_MEMBERS, NB201_PREDICTORS, nb201_accuracy_predictor
from harness.predictors import fit_quietly as _fit
from harness.regressors import NB201_TIME_REGRESSORS, nb201_time_regressor, relative_error
from harness.resolution import ACCURACY_RESOLUTION
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

SPACE = NB201Space()

#: Largest operator count of a cell: the last level.
MAX_COUNT = NUM_EDGES

# NB201Features, NB201BlockSumRegressor and the model factories live next to their PNAS counterparts
# (harness.encodings, harness.regressors, harness.predictors); they are imported above for the studies.


# ---------------------------------------------------------------------------- data
def _load(data_dir: str | os.PathLike | None) -> pd.DataFrame:
    """The checked table with row ``k`` the cell of key ``k``; ``FileNotFoundError`` when absent."""
    return load_nb201_table(data_dir).sort_values("key").reset_index(drop=True)


def _check_names(kind: str, names: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, non-empty, distinct and all in ``known``."""
    if isinstance(names, str) or len(names) == 0:
        raise ValueError(f"{kind} must be a non-empty sequence of names, got {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"{kind} must be distinct names from {tuple(known)}; got {list(names)}")
    return tuple(names)



# ---------------------------------------------------------------------------- latency regressors
#: Latency columns of the default regressor study: a server CPU, a GPU at batch 256, a phone
#: and an FPGA. Pixel 3 and Raspberry Pi 4 are left out: about 280 of their cells (the ones
#: whose output is cut off from the input) have latencies of a few microseconds, on which
#: relative errors explode whatever the regressor.
DEFAULT_DEVICES: tuple[str, ...] = ("lat_gold_6226", "lat_titanx_256", "lat_pixel2", "lat_fpga")

#: The default regressors of :func:`nb201_time_regressors`.
DEFAULT_TIME_REGRESSORS: tuple[str, ...] = ("block_sum", "ridge", "nnls", "xgboost", "mean")

#: A small XGBoost grid (2 settings, 5 folds) for the main job; the study's default is
#: POPNAS's 288-setting grid (:data:`harness.regressors.POPNAS_XGB_GRID`).
SMALL_XGB_GRID: dict[str, tuple] = {
    "n_estimators": (100,), "learning_rate": (0.1,), "max_depth": (2, 4),
    "min_child_weight": (1,), "gamma": (0,),
}

#: Columns of :func:`nb201_time_regressors`' table, in order.
TIME_REGRESSOR_COLUMNS: tuple[str, ...] = (
    "device", "regressor", "evaluation", "blocks", "mean_relative_error", "std_over_repetitions",
    "n", "repetitions", "encoding", "K",
)


def _level_samples(counts: np.ndarray, K: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each operator count ``0 .. 6``, ``min(K, level size)`` cell keys drawn without replacement."""
    return [
        np.sort(rng.choice(level, size=min(K, len(level)), replace=False))
        for level in (np.flatnonzero(counts == c) for c in range(MAX_COUNT + 1))
    ]


def nb201_time_regressors(
    data_dir: str | os.PathLike | None = None,
    devices: Sequence[str] = DEFAULT_DEVICES,
    regressors: Sequence[str] = DEFAULT_TIME_REGRESSORS,
    encoding: str = "onehot",
    K: int = 256,
    repetitions: int = 3,
    seed: int = 0,
    xgboost_grid: Mapping[str, Sequence] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """POPNAS's regressor ablation (POPNAS 4.1, Table 3) on NAS-Bench-201 latencies.

    Protocol: the operator count ``c`` plays POPNAS's block count. A
    repetition draws, for every level ``c = 0 .. 6``, ``S_c``: ``min(K,
    level size)`` random cells of ``c`` operators (levels 0, 1 and 2 are
    taken whole at ``K = 256``), standing for the cells a search trains at
    step ``c``. At step ``c = 2 .. 6`` each regressor is fitted on
    ``S_0 .. S_{c-1}`` (what a search knows before step ``c``, the empty
    cell being POPNAS's initial-thrust row) and predicts the latency of
    ``S_c``. As in POPNAS, ``"proper"`` error averages the relative errors
    of step ``c``, ``"progressive"`` pools steps ``2 .. c``
    (:func:`ablations.popnas_time_regressors.proper_and_progressive`). The
    cells are random rather than chosen by an accuracy predictor, and every
    device and regressor sees the same draws.

    ``devices`` are latency columns (``lat_...``); ``regressors`` names of
    :data:`NB201_TIME_REGRESSORS`; ``encoding`` one of
    :data:`NB201_ENCODINGS`; ``xgboost_grid`` XGBoost's grid (``None``:
    POPNAS's 288 settings; :data:`SMALL_XGB_GRID` is the main job's).
    Returns :data:`TIME_REGRESSOR_COLUMNS`: per ``(device, regressor,
    evaluation, blocks)`` the mean over repetitions of the mean relative
    error, its standard deviation over repetitions (NaN for one) and ``n``,
    the predictions behind one repetition's value. Raises
    ``FileNotFoundError`` when the table is absent (see the module docstring).
    """
    regressors = _check_names("regressors", regressors, NB201_TIME_REGRESSORS)
    K = check_integer("K", K, minimum=5)  # XGBoost's 5-fold cross-validation needs 5 rows a step
    repetitions = check_integer("repetitions", repetitions)
    models = {name: nb201_time_regressor(name, encoding, xgboost_grid) for name in regressors}
    table = _load(data_dir)
    devices = _check_names("devices", devices, [c for c in table.columns if c.startswith(COST_PREFIX)])

    matrix = SPACE.to_matrix(SPACE.all_cells())
    latency = {device: table[device].to_numpy(np.float64) for device in devices}
    frames = []
    work = [(r, step) for r in range(repetitions) for step in range(2, MAX_COUNT + 1)]
    levels = {r: _level_samples(matrix[:, 0], K, np.random.default_rng([seed, r])) for r in range(repetitions)}
    for r, step in tqdm(work, desc="nb201_time_regressors (repetition, step)", disable=not progress, leave=False):
        train, target = np.concatenate(levels[r][:step]), levels[r][step]
        for device, y in latency.items():
            for name, model in models.items():
                predicted = _fit(model, matrix[train], y[train]).predict(matrix[target])
                frames.append(pd.DataFrame({
                    "device": device, "regressor": name, "repetition": r, "step": step,
                    "relative_error": relative_error(y[target], predicted),
                }))
    per_repetition = proper_and_progressive(pd.concat(frames, ignore_index=True),
                                            ["device", "regressor", "repetition"])
    summary = (
        per_repetition.groupby(["device", "regressor", "evaluation", "blocks"], sort=False)
        .agg(mean_relative_error=("mean_relative_error", "mean"),
             std_over_repetitions=("mean_relative_error", "std"), n=("n", "first"))
        .reset_index()
        .assign(repetitions=repetitions, encoding=encoding, K=K)
    )
    return summary[list(TIME_REGRESSOR_COLUMNS)]


# ---------------------------------------------------------------------------- accuracy predictors
#: The predictors :func:`nb201_predictor_ranking` compares by default (PNAS's MLP and ensemble, two
#: baselines).
RANKING_PREDICTORS: tuple[str, ...] = ("mlp", "mlp-ensemble", "xgboost", "ridge")

#: The two splits of :func:`nb201_predictor_ranking`.
RANKING_SPLITS: tuple[str, ...] = ("random", "smaller_to_larger")

#: Columns of :func:`nb201_predictor_ranking`'s table, in order.
RANKING_COLUMNS: tuple[str, ...] = (
    "dataset", "predictor", "split", "fit_blocks", "eval_blocks", "n_train", "n_test", "trials",
    "method", "value", "std_over_trials", "std_error", "ci_low", "ci_high", "n", "n_boot", "confidence",
)


def _ranking_splits(counts: np.ndarray, K: int, seed: int, t: int, splits: Sequence[str]
                    ) -> list[tuple[str, int | None, np.ndarray, np.ndarray]]:
    """Trial ``t``'s ``(split, fit_blocks, train keys, test keys)``: one random split, and a
    smaller-to-larger split per level ``b = 1 .. 5``."""
    out = []
    everything = np.arange(len(counts))
    if "random" in splits:
        train = np.sort(np.random.default_rng([seed, t, 0]).choice(everything, size=K, replace=False))
        out.append(("random", None, train, np.setdiff1d(everything, train)))
    if "smaller_to_larger" in splits:
        for b in range(1, MAX_COUNT):
            pool = np.flatnonzero(counts <= b)
            train = np.sort(np.random.default_rng([seed, t, 1, b]).choice(pool, size=min(K, len(pool)),
                                                                         replace=False))
            out.append(("smaller_to_larger", b, train, np.flatnonzero(counts == b + 1)))
    return out


def nb201_predictor_ranking(
    data_dir: str | os.PathLike | None = None,
    dataset: str = "cifar10",
    predictors: Sequence[str] = RANKING_PREDICTORS,
    splits: Sequence[str] = RANKING_SPLITS,
    K: int = 256,
    trials: int = 3,
    methods: Sequence[str] = METHODS,
    n_boot: int = 800,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """How well accuracy predictors rank unseen NAS-Bench-201 cells (Kendall tau-b and Spearman rho).

    Splits, each repeated in ``trials`` trials (a new training sample and
    model seed each; every predictor of a trial sees the same cells):

    * ``"random"``: fit on ``K`` uniformly random cells, rank all the
      others (``fit_blocks`` and ``eval_blocks`` are NA);
    * ``"smaller_to_larger"`` (PNAS's extrapolation, Table 1's
      rho-tilde): for ``b = 1 .. 5``, fit on ``min(K, ...)`` random cells
      with at most ``b`` operators, rank all cells with ``b + 1``.

    Targets are the test accuracy after 200 epochs on ``dataset``
    (``cifar10``, ``cifar100`` or ``imagenet16``), as fractions. Every row
    is a :func:`ablations.pnas_table1.trial_mean_correlation`: ``value`` is
    the mean over trials, ``std_over_trials`` the spread of the trials, and
    the interval a two-level bootstrap over trials and test cells (``n``
    counts the pairs over all trials). Columns: :data:`RANKING_COLUMNS`.
    Raises ``FileNotFoundError`` when the table is absent (see the module
    docstring).
    """
    predictors = _check_names("predictors", predictors, NB201_PREDICTORS)
    splits = _check_names("splits", splits, RANKING_SPLITS)
    methods = _check_names("methods", methods, METHODS)
    K = check_integer("K", K, minimum=ENSEMBLE_MEMBERS)
    if K >= SPACE.num_cells - 2:
        raise ValueError(f"K must leave at least 3 test cells of the {SPACE.num_cells}, got {K}")
    trials = check_integer("trials", trials)
    check_integer("n_boot", n_boot, minimum=2)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    table = _load(data_dir)
    datasets = sorted(c.removesuffix(ACCURACY_SUFFIX) for c in table if c.endswith(ACCURACY_SUFFIX))
    if dataset not in datasets:
        raise ValueError(f"unknown dataset {dataset!r}; the table has {datasets}")

    matrix = SPACE.to_matrix(SPACE.all_cells())
    accuracy = table[dataset + ACCURACY_SUFFIX].to_numpy(np.float64) / 100.0
    scored: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
    for t in tqdm(range(trials), desc="nb201_predictor_ranking (trial)", disable=not progress, leave=False):
        model_seed = int(np.random.SeedSequence([seed, t]).generate_state(1)[0])
        for split, b, train, test in _ranking_splits(matrix[:, 0], K, seed, t, splits):
            for name in predictors:
                model = _fit(nb201_accuracy_predictor(name, model_seed), matrix[train], accuracy[train])
                key = (name, split, b, len(train), len(test))
                scored.setdefault(key, []).append((model.predict(matrix[test]), accuracy[test]))

    rows = []
    for (name, split, b, n_train, n_test), pairs in scored.items():
        for method in methods:
            # the smaller-to-larger test set (a whole level) is the same in every trial
            estimate, values = trial_mean_correlation(
                pairs, method=method, n_boot=n_boot, confidence=confidence, seed=seed,
                common_cells=split == "smaller_to_larger",
            )
            labels = {
                "dataset": dataset, "predictor": name, "split": split,
                "fit_blocks": b, "eval_blocks": None if b is None else b + 1,
                "n_train": n_train, "n_test": n_test, "trials": trials,
                "std_over_trials": spread_over_trials(values),
            }
            rows.append((labels, estimate))
    frame = correlation_table(rows)
    frame[["fit_blocks", "eval_blocks"]] = frame[["fit_blocks", "eval_blocks"]].astype("Int64")
    return frame[list(RANKING_COLUMNS)]


# ---------------------------------------------------------------------------- report section
#: How the predictor table's rank correlations read predictions (said in the report, beside it).
GRID_NOTE = (
    f" Rank correlations read the predictions on the {ACCURACY_RESOLUTION:g} accuracy grid "
    "(`harness.resolution`), so predictions equal on paper are ties on every machine. Ridge, an additive "
    "model fitted on the cells of at most one operator at b = 1, can give the 240 two-operator cells only a few distinct "
    "values (five on the packaged table) and is scored on those ties; there it can equal another model "
    "that splits the cells into the same classes."
)

def sections(run: PaperRun) -> list[TableSection]:
    """The ``nb201`` study's report sections: the time regressors, the predictors' ranking and the
    train-size sweep (:mod:`ablations.nb201_train_sizes`)."""
    # imported here: nb201_train_sizes builds on this module
    from ablations.nb201_train_sizes import section as train_sizes_section

    cfg = run.settings.nb201
    sections = []
    for table_id, title, study, options, reading in (
        ("nb201_time_regressors", "Time (latency) regressors on NAS-Bench-201, smaller to larger cells",
         nb201_time_regressors, cfg.time_regressors, ""),
        ("nb201_predictor_ranking", "Accuracy predictors' rank correlation on NAS-Bench-201",
         nb201_predictor_ranking, cfg.predictor_ranking, GRID_NOTE),
    ):
        # no fallback: the packaged table is always there, and a data_dir the user names must exist
        table = study(data_dir=cfg.data_dir, seed=run.settings.seed, **options)
        source = f"`{cfg.data_dir}`" if cfg.data_dir else "the packaged copy (`backends/data/nb201`)"
        notes = (f"NAS-Bench-201 (NATS-Bench accuracies, HELP latencies) from {source}; the count of "
                 f"non-`none` operators plays the block count. See `ablations/nb201_studies.py`.{reading}")
        sections.append(TableSection(table_id, title, table, notes=notes, settings=dict(options)))
    sections.append(train_sizes_section(run, cfg))
    return sections
