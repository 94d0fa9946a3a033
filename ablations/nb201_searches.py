"""Study ``nb201_pnas_vs_popnas``: PNAS, POPNAS, random search and regularized evolution on
NAS-Bench-201, scored against each device's exhaustive accuracy-latency front.

NAS-Bench-201 holds every cell's accuracy and latency, so the true Pareto
front of (accuracy, latency) is known on every device, and a search's
evaluated cells can be scored against it:

* ``normalised_hypervolume``: the hypervolume of the evaluated cells over the
  true front's, both bounded by the reference point (the table's lowest
  accuracy, the device's highest latency): 1 means the search found a set as
  good as the whole front; :func:`harness.pareto_metrics.hypervolume`;
* ``front_recall``: the share of the true front's cells evaluated;
* ``regret_q<q>``: the best accuracy achievable within a latency budget (the
  ``q``-quantile of the device's latencies over all cells; ``q = 1`` is no
  budget) minus the best the search evaluated within it, in accuracy points
  (percent); a search with no cell within the budget scores the table's
  lowest accuracy there.

Protocol
    Every search evaluates at most ``24 + 5 K`` cells (``budget``), the cells
    PNAS evaluates: 24 one-operator cells at step 1, ``K`` at each of the
    steps 2..6. PNAS and POPNAS expand the cells of the previous step by one
    operator and keep ``K`` by predicted accuracy; POPNAS (with the strict
    predicted front, ``pareto=True``, and its initial-thrust empty cell)
    keeps at most ``K`` of the front of predicted accuracy and predicted
    latency, so it may evaluate fewer. Random search draws uniform cells of
    any size (``whole_space``), step 1 as many as PNAS's; regularized
    evolution starts from 24 such cells and mutates one edge at a time. The
    evaluated sets are cut at ``budget`` in evaluation order. Accuracy is the
    chosen dataset's test accuracy after 200 epochs; the time objective is a
    device's latency (the ``nb201`` backend's ``cost``; its ``train_time``,
    the latency in seconds, is what POPNAS's regressor fits).

    PNAS, random search and evolution never read the latency, so each runs
    once per (dataset, seed) and is scored on every device: running them per
    device would repeat the same choices. POPNAS runs per (dataset, device,
    seed). Seeds pair the methods (the same seed seeds every method), so the
    comparison per method pair is a Wilcoxon signed-rank test over seeds.

Predictors
    The searches' predictors are the tabular ones of
    :func:`harness.predictors.nb201_accuracy_predictor` (the default
    ``"ridge"``, one value per (edge, operator), is what fits the main job's
    time budget: the MLP ensemble costs about 3 s a fit on 2 cores, 480 fits
    here); POPNAS's latency model is NNLS on the same one-hot features
    (:func:`harness.search_space.time_regressor`).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ablations import figures
from ablations.report import TableSection
from backends.nb201 import ACCURACY_SUFFIX, NB201Backend, load_nb201_table
from harness.nb201_space import NB201Space
from harness.pareto_metrics import anytime_hypervolume, best_under_budget, front_recall, hypervolume, true_front
from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution
from harness.store import atomic_write_frame
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

log = logging.getLogger(__name__)

SPACE = NB201Space()

#: The methods compared, in table order.
METHODS: tuple[str, ...] = ("pnas", "popnas", "random", "evolution")

#: Methods whose choices do not depend on the latency (run once per dataset and seed).
LATENCY_BLIND: tuple[str, ...] = ("pnas", "random", "evolution")

#: A GPU (batch 256), a server CPU and a phone: three kinds of device.
DEFAULT_DEVICES: tuple[str, ...] = ("lat_titanx_256", "lat_gold_6226", "lat_pixel3")

DEFAULT_DATASETS: tuple[str, ...] = ("cifar10", "cifar100")

#: Latency budgets of the regret, as quantiles of a device's latencies over all cells.
BUDGET_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)

#: Regularized evolution's population (step 1 evaluates as many cells as PNAS's) and tournament.
DEFAULT_EVOLUTION: dict[str, int] = {"population_size": 24, "sample_size": 6}

#: Confidence of the intervals over seeds.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class NB201SearchStudy:
    """The study's tables (see :func:`nb201_pnas_vs_popnas`)."""

    #: one row per (dataset, device, method, seed): every score of that run.
    scores: pd.DataFrame
    #: per (dataset, device, method, metric): mean over seeds and its 95 % t-interval.
    summary: pd.DataFrame
    #: per (dataset, device, metric, method pair): Wilcoxon signed-rank test over seeds.
    tests: pd.DataFrame
    #: per (dataset, device, method, seed, evaluated cells): cumulative cost and normalised hypervolume.
    anytime: pd.DataFrame
    #: the true front and each method's found front (first seed), per (dataset, device).
    fronts: pd.DataFrame
    #: wall-clock seconds the study took.
    runtime_s: float


def metric_names(budgets: Sequence[float] = BUDGET_QUANTILES) -> list[str]:
    """The study's metrics, in table order, for regret budgets ``budgets``."""
    return ["normalised_hypervolume", "front_recall", *(f"regret_q{q:g}" for q in budgets)]


def _run(method: str, backend: NB201Backend, K: int, seed: int, predictor: Mapping[str, Any],
         evolution: Mapping[str, int]) -> pd.DataFrame:
    """The ``trained`` table of one search, in memory."""
    if method == "pnas":
        search = PNAS(SPACE, backend, K=K, seed=seed, **predictor)
    elif method == "popnas":
        search = POPNAS(SPACE, backend, K=K, seed=seed, pareto=True, **predictor)
    elif method == "random":
        search = RandomSearch(SPACE, backend, K=K, seed=seed, whole_space=True)
    else:
        search = RegularizedEvolution(SPACE, backend, K=K, seed=seed, whole_space=True, **evolution)
    return search.run(None).trained


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and the two-sided :data:`CONFIDENCE` t-interval of the mean (NaN bounds for one value)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * stats.sem(values)
    return mean, mean - float(half), mean + float(half)


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Statistic and two-sided p-value of the signed-rank test of ``a - b``; p = 1 when all are equal."""
    if np.all(a == b):
        return np.nan, 1.0
    with warnings.catch_warnings():
        # ties and zero differences make scipy fall back to the normal approximation, as it says
        warnings.simplefilter("ignore", UserWarning)
        result = stats.wilcoxon(a, b)
    return float(result.statistic), float(result.pvalue)


def nb201_pnas_vs_popnas(
    data_dir: str | os.PathLike | None = None,
    datasets: Sequence[str] = DEFAULT_DATASETS,
    devices: Sequence[str] = DEFAULT_DEVICES,
    seeds: int | Sequence[int] = 10,
    K: int = 32,
    predictor: str = "ridge-ensemble",
    evolution: Mapping[str, int] | None = None,
    budgets: Sequence[float] = BUDGET_QUANTILES,
    methods: Sequence[str] = METHODS,
    progress: bool = False,
) -> NB201SearchStudy:
    """Run the searches and score them against the true fronts (see the module docstring).

    ``seeds`` is a count (seeds ``0 .. seeds-1``) or the seeds themselves;
    ``K`` the cells PNAS and POPNAS keep per step (the budget is ``24 + 5 K``
    evaluated cells); ``predictor`` a name of
    :data:`harness.predictors.NB201_PREDICTORS`; ``evolution`` regularized
    evolution's ``population_size`` and ``sample_size``; ``budgets`` the
    latency quantiles of the regret, each in ``(0, 1]``.
    """
    start = time.perf_counter()
    seeds = list(range(check_integer("seeds", seeds))) if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds!r}")
    K = check_integer("K", K)
    budgets = tuple(float(q) for q in budgets)
    if not budgets or any(not 0.0 < q <= 1.0 for q in budgets):
        raise ValueError(f"budgets must be latency quantiles in (0, 1], got {budgets!r}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct names from {METHODS}, got {list(methods)!r}")
    evolution = dict(DEFAULT_EVOLUTION if evolution is None else evolution)
    settings = {"predictor": predictor}
    budget = len(SPACE.initial_cells()) + (SPACE.max_blocks - 1) * K

    table = load_nb201_table(data_dir).sort_values("key").reset_index(drop=True)
    backends = {(d, c): NB201Backend(data_dir, dataset=d, cost=c) for d in datasets for c in devices}

    trained: dict[tuple, pd.DataFrame] = {}
    work = [(d, None, m, s) for d in datasets for m in methods if m in LATENCY_BLIND for s in seeds]
    work += [(d, c, "popnas", s) for d in datasets for c in devices for s in seeds if "popnas" in methods]
    for dataset, device, method, seed in tqdm(work, desc="nb201_pnas_vs_popnas (search)",
                                              disable=not progress, leave=False):
        backend = backends[(dataset, device or devices[0])]
        rows = _run(method, backend, K, seed, {"predictor": predictor}, evolution)
        trained[(dataset, device, method, seed)] = rows.iloc[:budget]

    score_rows, curve_rows, front_rows = [], [], []
    for dataset, device in itertools.product(datasets, devices):
        accuracy = table[dataset + ACCURACY_SUFFIX].to_numpy(np.float64) / 100.0
        cost = table[device].to_numpy(np.float64)
        reference = (float(accuracy.min()), float(cost.max()))
        front = true_front(accuracy, cost)
        best_hv = hypervolume(accuracy[front], cost[front], reference)
        limits = np.quantile(cost, budgets)
        best_possible = best_under_budget(accuracy, cost, limits)
        front_rows.append(pd.DataFrame({"dataset": dataset, "device": device, "method": "true front",
                                        "seed": pd.NA, "cell": SPACE.format_array(SPACE.all_cells()[front]),
                                        "accuracy": accuracy[front], "cost": cost[front]}))
        for method, seed in itertools.product(methods, seeds):
            rows = trained[(dataset, None if method in LATENCY_BLIND else device, method, seed)]
            keys = SPACE.keys(SPACE.parse_many(rows["cell"].tolist()))
            acc, lat = accuracy[keys], cost[keys]
            found = best_under_budget(acc, lat, limits)
            regret = 100.0 * (best_possible - np.where(np.isnan(found), reference[0], found))
            curve = anytime_hypervolume(acc, lat, reference) / best_hv
            score_rows.append({
                "dataset": dataset, "device": device, "method": method, "seed": seed,
                "evaluated": len(keys), "distinct": len(np.unique(keys)), "search_cost": float(lat.sum()),
                "normalised_hypervolume": float(curve[-1]),
                "front_recall": front_recall(keys, np.flatnonzero(front)),
                **{f"regret_q{q:g}": float(r) for q, r in zip(budgets, regret)},
            })
            curve_rows.append(pd.DataFrame({
                "dataset": dataset, "device": device, "method": method, "seed": seed,
                "evaluated": np.arange(1, len(keys) + 1), "cumulative_cost": np.cumsum(lat),
                "normalised_hypervolume": curve,
            }))
            if seed == seeds[0]:
                mask = true_front(acc, lat)
                front_rows.append(pd.DataFrame({"dataset": dataset, "device": device, "method": method,
                                                "seed": seed, "cell": rows["cell"].to_numpy()[mask],
                                                "accuracy": acc[mask], "cost": lat[mask]}))
    scores = pd.DataFrame(score_rows)
    metrics = metric_names(budgets)
    summary_rows, test_rows = [], []
    for (dataset, device), group in scores.groupby(["dataset", "device"], sort=False):
        by_method = {m: g.sort_values("seed") for m, g in group.groupby("method", sort=False)}
        for metric in metrics:
            for method in methods:
                mean, low, high = _interval(by_method[method][metric].to_numpy())
                summary_rows.append({"dataset": dataset, "device": device, "method": method, "metric": metric,
                                     "mean": mean, "ci_low": low, "ci_high": high, "seeds": len(seeds)})
            for a, b in itertools.combinations(methods, 2):
                x, y = by_method[a][metric].to_numpy(), by_method[b][metric].to_numpy()
                statistic, p = _wilcoxon(x, y)
                better = (x < y) if metric.startswith("regret") else (x > y)  # regret: lower is better
                test_rows.append({"dataset": dataset, "device": device, "metric": metric, "method_a": a,
                                  "method_b": b, "mean_difference": float(np.mean(x - y)),
                                  "a_better_seeds": int(better.sum()),
                                  "statistic": statistic, "p_value": p, "seeds": len(seeds)})
    anytime = pd.concat(curve_rows, ignore_index=True)
    return NB201SearchStudy(
        scores=scores.assign(K=K, budget=budget, **settings),
        summary=pd.DataFrame(summary_rows),
        tests=pd.DataFrame(test_rows),
        anytime=anytime,
        fronts=pd.concat(front_rows, ignore_index=True),
        runtime_s=time.perf_counter() - start,
    )


def anytime_at_steps(anytime: pd.DataFrame, K: int) -> pd.DataFrame:
    """The anytime curves at the end of each progressive step (24, 24 + K, ...), mean and interval over seeds.

    A run that evaluated fewer cells than a checkpoint (POPNAS, whose fronts
    may be smaller than ``K``) counts with its last value there.
    """
    first = len(SPACE.initial_cells())
    checkpoints = [first + k * K for k in range(SPACE.max_blocks)]
    rows = []
    for (dataset, device, method), group in anytime.groupby(["dataset", "device", "method"], sort=False):
        for n in checkpoints:
            last = group[group["evaluated"] <= n].groupby("seed").tail(1)
            mean, low, high = _interval(last["normalised_hypervolume"].to_numpy())
            rows.append({"dataset": dataset, "device": device, "method": method, "evaluated": n,
                         "mean_cumulative_cost": float(last["cumulative_cost"].mean()),
                         "normalised_hypervolume": mean, "ci_low": low, "ci_high": high, "seeds": len(last)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- report section
def sections(run: PaperRun) -> list[TableSection]:
    """The ``nb201_pnas_vs_popnas`` study's report sections (summary and tests; the long tables as CSV only)
    and figures."""
    cfg = run.settings.nb201
    options = dict(cfg.searches)
    study = nb201_pnas_vs_popnas(data_dir=cfg.data_dir, **options)
    log.info("nb201_pnas_vs_popnas: %d searches scored in %.1f s", len(study.scores), study.runtime_s)
    K = int(study.scores["K"].iloc[0])
    # the per-run scores, all tests, the anytime curves at step ends and the fronts: CSV only (long)
    for name, frame in (("scores", study.scores), ("tests_all", study.tests),
                        ("anytime", anytime_at_steps(study.anytime, K)), ("fronts", study.fronts)):
        atomic_write_frame(frame, run.output_dir / "tables" / f"nb201_pnas_vs_popnas_{name}.csv")
    figures.anytime_hypervolume_curves(study.anytime, run.figure("nb201_anytime_hypervolume.png"),
                                       "NAS-Bench-201: hypervolume of the evaluated cells vs cells evaluated")
    figures.fronts_found(study.fronts, run.figure("nb201_fronts_found.png"),
                         "NAS-Bench-201: fronts found (first seed) vs the true front")
    keys = ["dataset", "device", "method"]
    wide = study.summary.pivot_table(index=keys, columns="metric", values=["mean", "ci_low", "ci_high"],
                                     sort=False)
    metrics = list(dict.fromkeys(study.summary["metric"]))
    summary = pd.DataFrame({f"{m}{'' if stat == 'mean' else '_' + stat}": wide[(stat, m)]
                            for m in metrics for stat in ("mean", "ci_low", "ci_high")}).reset_index()
    evaluated = study.scores.groupby(keys, sort=False)[["evaluated", "search_cost"]].mean().reset_index()
    summary = evaluated.merge(summary, on=keys)
    shown = study.tests[study.tests["metric"].isin(["normalised_hypervolume", "regret_q0.25"])]
    source = f"`{cfg.data_dir}`" if cfg.data_dir else "the packaged copy"
    settings = {**options, "budget (cells)": int(study.scores["budget"].iloc[0]),
                "reference point": "(lowest accuracy of the table, highest latency of the device)"}
    notes = (f"NAS-Bench-201 ({source}): every search evaluates at most 24 + 5 K cells; PNAS, random search "
             "and evolution do not read latencies, so each runs once per (dataset, seed) and is scored on "
             "every device; POPNAS (strict predicted front) runs per device and may evaluate fewer cells "
             "(`evaluated`). Means over seeds with 95 % t-intervals; `search_cost` is the summed latency "
             "(ms) of the evaluated cells, the virtual clock. Regret in accuracy points at latency budgets "
             "given as quantiles of the device's latencies (q1 = no budget). Per-run scores, every metric's "
             "tests, the anytime curves at each step's end and the fronts are in "
             "`tables/nb201_pnas_vs_popnas_*.csv`. See `ablations/nb201_searches.py`.")
    return [
        TableSection("nb201_pnas_vs_popnas", "PNAS vs POPNAS vs baselines on NAS-Bench-201, scored against "
                     "the true accuracy-latency front", summary, notes=notes, settings=settings,
                     figures=("nb201_anytime_hypervolume.png", "nb201_fronts_found.png")),
        TableSection("nb201_pnas_vs_popnas_tests", "Wilcoxon signed-rank tests over seeds per method pair "
                     "(normalised hypervolume and regret at the 25 % latency quantile)", shown,
                     notes=("`mean_difference` is a minus b; `a_better_seeds` counts the seeds where a is "
                            "better (higher hypervolume, lower regret). Two-sided p-values, not corrected "
                            "for the number of tests.")),
    ]
