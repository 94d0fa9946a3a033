"""Search quality as a function of evaluator fidelity: the ``fidelity_dial`` study (issue 15).

A landscape whose evaluator noise is set exactly: Kendall's tau-b between a cell's noisy
(measured) and clean accuracy is ``tau`` in the population, and the clean landscape does not depend
on it. So each ``tau`` is the same landscape seen through a noisier evaluator, and running PNAS,
POPNAS, random search and regularized evolution at several ``tau`` says how much evaluator noise
costs each of them. Two landscapes (``landscape``):

* ``"surrogate"``: the noisy-Rastrigin surrogate (``backends.surrogate``) over PNAS cells;
* ``"nb201"``: NAS-Bench-201's real accuracies, seen through the same Gaussian copula
  (``backends.nb201``, option ``tau``), so the curve is anchored on a real landscape.

One run (:func:`fidelity_run`) is one search with one seed at one ``tau``; it records

* ``best_clean_accuracy``: the clean accuracy of the cell the search would hand a user, the one
  with the highest *noisy* accuracy among those it trained (first one on ties);
* ``best_noisy_accuracy`` (that cell's measured accuracy) and ``oracle_clean_accuracy`` (the best
  clean accuracy among the trained cells: what a noise-free pick would have got);
* ``clean_top_fraction``: the fraction of the space whose clean accuracy beats the picked cell's.
  On the surrogate it is estimated on a uniform sample of ``rank_sample`` cells with
  ``max_blocks`` blocks (the space is almost all such cells: at B = 5 the smaller ones are 0.1 %
  of it), so 0 is "better than every sampled cell"; on NAS-Bench-201 it is exact, over all
  15,625 cells, and the run also records ``clean_rank``, the picked cell's rank among them
  (1 + the number of cells with a higher clean accuracy);
* ``search_time``: the evaluator's seconds of every trained cell (the surrogate's training times;
  NAS-Bench-201's latency, its ``train_time``; POPNAS's point is to lower it), and
  ``cells_trained`` (cells with blocks, or operators on NAS-Bench-201).

Budgets: PNAS, random search and evolution train the same number of cells (all one-block cells
at step 1, then ``K`` a step; evolution's population is the one-block count). POPNAS trains at
most ``K`` a step, fewer when the predicted Pareto front is smaller; ``cells_trained`` shows it.
On NAS-Bench-201 the searches are set up as in ``ablations.nb201_searches`` (random search and
evolution draw cells of every size, evolution's tournament is 6 of its 24; the predictor is the
tabular ``ridge-ensemble``).

Runs are summarised (:func:`summarise`) per ``(method, tau)`` as the mean over seeds with a
Student-t 95 % interval (``harness.metrics.mean_interval``, the sweep aggregate's own), in the long
layout the sweep aggregate writes (``method, tau, metric, mean, std, ci_low, ci_high,
n_seeds``). :func:`method_order_agreement` then compares, at each ``tau``, the order of the
methods by mean ``best_clean_accuracy`` with their order on the clean landscape (``tau = 1``):
Kendall's tau-b between the two orders (1: noise leaves the ranking of the methods alone).
:func:`plot_fidelity_dial` draws quality against ``tau`` per method.

Where it runs
    * as a sweep, one job per (method, tau, seed), aggregated by ``popnas-harness-aggregate``
      (experiment ``fidelity_dial``, ``experiment.landscape`` choosing the landscape, see the
      README), which also writes the order agreement and the figure (:func:`summarise_sweep`);
    * in the main job at reduced scale (``settings.fidelity_dial`` and
      ``settings.fidelity_dial_nb201``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ablations.report import TableSection
from backends.nb201 import NB201Backend
from backends.surrogate import SurrogateBackend
from harness.metrics import mean_interval
from harness.nb201_space import NB201Space
from harness.space import CellSpace
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

#: The study's evaluator fidelities (Kendall tau-b of noisy to clean accuracy); 1 is the clean landscape.
TAUS: tuple[float, ...] = (0.55, 0.65, 0.75, 0.85, 0.95, 1.0)

#: The searches compared, by ``harness.search`` strategy name.
METHODS: tuple[str, ...] = ("pnas", "popnas", "random", "evolution")

#: A run's measured values (one row per run), in the order tables list them; NAS-Bench-201 runs
#: add :data:`EXACT_RANK_METRICS`.
METRICS: tuple[str, ...] = ("best_clean_accuracy", "best_noisy_accuracy", "oracle_clean_accuracy",
                            "clean_top_fraction", "search_time", "cells_trained")

#: Measured only where every cell's clean accuracy is known (NAS-Bench-201).
EXACT_RANK_METRICS: tuple[str, ...] = ("clean_rank",)

#: The quality the figure and the order agreement read.
QUALITY = "best_clean_accuracy"


@dataclass(frozen=True)
class Landscape:
    """How the study runs on one landscape: the searches' defaults there and whether ranks are exact."""

    #: PNAS's and POPNAS's accuracy predictor and its options when a run names none.
    predictor: str
    predictor_options: Mapping[str, Any]
    #: random search and evolution draw cells of every size (``whole_space``), not only the largest.
    whole_space: bool
    #: evolution's tournament size (its population is step 1's cell count); ``None``: min(25, population).
    tournament: int | None
    #: the clean accuracy of every cell is known, so ranks are exact (no ``rank_sample``).
    exact_rank: bool


#: The landscapes by name (see the module docstring).
LANDSCAPES: dict[str, Landscape] = {
    "surrogate": Landscape("mlp-ensemble", {"output_bias": None}, whole_space=False, tournament=None,
                           exact_rank=False),
    "nb201": Landscape("ridge-ensemble", {}, whole_space=True, tournament=6, exact_rank=True),
}


def metrics(landscape: str) -> tuple[str, ...]:
    """The metrics a run on ``landscape`` records, in table order."""
    return METRICS + (EXACT_RANK_METRICS if _landscape(landscape).exact_rank else ())


def _landscape(name: str) -> Landscape:
    if name not in LANDSCAPES:
        raise ValueError(f"unknown landscape {name!r}; choose one of {sorted(LANDSCAPES)}")
    return LANDSCAPES[name]


def _strategy(method: str, space, backend, K: int, seed: int, predictor: str,
              predictor_options: Mapping[str, Any], landscape: Landscape):
    """The search ``method`` with the study's budget (see the module docstring)."""
    from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution

    if method in ("pnas", "popnas"):
        cls = PNAS if method == "pnas" else POPNAS
        return cls(space, backend, K=K, seed=seed, predictor=predictor,
                   predictor_options=dict(predictor_options))
    if method == "random":
        return RandomSearch(space, backend, K=K, seed=seed, whole_space=landscape.whole_space)
    if method == "evolution":
        # the population is step 1's size, as many cells as PNAS's first step trains
        population = len(space.initial_cells())
        tournament = landscape.tournament or min(25, population)
        return RegularizedEvolution(space, backend, K=K, seed=seed, population_size=population,
                                    sample_size=tournament, whole_space=landscape.whole_space)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


@lru_cache(maxsize=8)
def _sampled_clean(max_blocks: int, rank_sample: int, surrogate_items: tuple) -> np.ndarray:
    """Sorted clean accuracies of ``rank_sample`` uniform cells of ``max_blocks`` blocks (any tau: the
    clean landscape does not depend on it). Drawn from a fixed seed, so every run ranks against the
    same sample."""
    space = CellSpace.pnas(max_blocks=max_blocks)
    backend = SurrogateBackend(space=space, **dict(surrogate_items))
    cells = space.sample(rank_sample, max_blocks, seed=0xF1DE, replace=True)
    return np.sort(backend.clean_accuracy(cells))


def _evaluator(landscape: str, tau: float, max_blocks: int | None, rank_sample: int,
               options: Mapping[str, Any]):
    """The space, the backend at ``tau`` and the sorted clean accuracies the pick is ranked among."""
    if landscape == "surrogate":
        space = CellSpace.pnas(max_blocks=5 if max_blocks is None else max_blocks)
        backend = SurrogateBackend(space=space, tau=tau, **options)
        return space, backend, _sampled_clean(space.max_blocks, int(rank_sample), tuple(sorted(options.items())))
    if max_blocks is not None and max_blocks != NB201Space().max_blocks:
        raise ValueError(f"max_blocks={max_blocks!r}: NAS-Bench-201 cells have {NB201Space().max_blocks} "
                         "edges; leave max_blocks unset (None) on the nb201 landscape")
    backend = NB201Backend(tau=tau, **options)
    return backend.space, backend, np.sort(backend.clean_accuracy(backend.space.all_cells()))


def fidelity_run(method: str, tau: float, seed: int, *, landscape: str = "surrogate",
                 max_blocks: int | None = None, K: int = 256, rank_sample: int = 100_000,
                 predictor: str | None = None, predictor_options: Mapping[str, Any] | None = None,
                 backend_options: Mapping[str, Any] | None = None,
                 output_dir: str | Path | None = None) -> dict[str, Any]:
    """One search ``method`` with ``seed`` on ``landscape`` at ``tau``: the row of :func:`metrics`.

    ``max_blocks`` sizes the surrogate's cell space (default 5; NAS-Bench-201 has its own);
    ``predictor``/``predictor_options`` are PNAS's and POPNAS's accuracy predictor
    (``harness.search_space.accuracy_predictor``; ``None``: the landscape's default, see
    :data:`LANDSCAPES`); ``backend_options`` go to the backend (not ``tau``; NAS-Bench-201's
    ``dataset``, ``cost``, ``data_dir``); ``rank_sample`` is the surrogate's rank sample;
    ``output_dir`` keeps the search's checkpoints (``None``: in memory).
    """
    spec = _landscape(landscape)
    backend_options = dict(backend_options or {})
    if "tau" in backend_options:
        raise ValueError("backend_options must not set tau: the study sets it per run")
    check_integer("rank_sample", rank_sample)
    if predictor is None:
        predictor, predictor_options = spec.predictor, {**spec.predictor_options, **(predictor_options or {})}
    space, backend, reference = _evaluator(landscape, tau, max_blocks, rank_sample, backend_options)
    strategy = _strategy(method, space, backend, K, seed, predictor, predictor_options or {}, spec)
    trained = strategy.run(output_dir).trained
    cells = trained[trained["blocks"] > 0].reset_index(drop=True)
    pick = cells.loc[cells["accuracy"].idxmax()]
    clean = float(pick["accuracy_clean"])
    better = len(reference) - int(np.searchsorted(reference, clean, side="right"))
    row = {
        "method": method, "tau": float(tau), "seed": int(seed),
        "best_clean_accuracy": clean,
        "best_noisy_accuracy": float(pick["accuracy"]),
        "oracle_clean_accuracy": float(cells["accuracy_clean"].max()),
        "clean_top_fraction": better / len(reference),
        "search_time": float(trained["train_time"].sum()),
        "cells_trained": int(len(cells)),
    }
    if spec.exact_rank:
        row["clean_rank"] = 1 + better
    return row


def fidelity_runs(methods: Sequence[str] = METHODS, taus: Sequence[float] = TAUS,
                  seeds: Sequence[int] = range(20), **options: Any) -> pd.DataFrame:
    """:func:`fidelity_run` for every method, tau and seed (in this process), one row each."""
    return pd.DataFrame([fidelity_run(method, tau, seed, **options)
                         for method in methods for tau in taus for seed in seeds])


def summarise(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per ``(method, tau, metric)``: mean over seeds, std and Student-t interval, and the seed count
    (the sweep aggregate's layout and arithmetic); the metrics are those the runs recorded."""
    recorded = [metric for metric in METRICS + EXACT_RANK_METRICS if metric in runs.columns]
    rows = []
    for (method, tau), group in runs.groupby(["method", "tau"], sort=True):
        for metric in recorded:
            mean, std, low, high = mean_interval(group[metric].to_numpy(dtype=np.float64), confidence)
            rows.append({"method": method, "tau": tau, "metric": metric, "mean": mean, "std": std,
                         "ci_low": low, "ci_high": high, "n_seeds": int(group["seed"].nunique())})
    return pd.DataFrame(rows)


def method_order_agreement(summary: pd.DataFrame, metric: str = QUALITY) -> pd.DataFrame:
    """Per ``tau``: the methods best first by mean ``metric``, and Kendall's tau-b between that order
    and the order at the largest ``tau`` of the table (the clean landscape when it holds tau = 1)."""
    means = summary[summary["metric"] == metric].pivot(index="tau", columns="method", values="mean")
    reference = means.loc[means.index.max()]
    rows = []
    for tau, row in means.iterrows():
        order = row.sort_values(ascending=False, kind="stable")
        agreement = stats.kendalltau(row.to_numpy(), reference[row.index].to_numpy()).statistic
        rows.append({"tau": float(tau), "reference_tau": float(means.index.max()),
                     "order": " > ".join(order.index), "kendall_tau_to_reference": float(agreement)})
    return pd.DataFrame(rows)


def plot_fidelity_dial(summary: pd.DataFrame, path: str | Path, metric: str = QUALITY) -> Path:
    """Mean ``metric`` (with its interval) against tau, one line per method."""
    from ablations.figures import new_figure, save_figure

    figure = new_figure(6.0, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for method, rows in summary[summary["metric"] == metric].groupby("method", sort=True):
        rows = rows.sort_values("tau")
        axes.plot(rows["tau"], rows["mean"], marker="o", label=method)
        axes.fill_between(rows["tau"], rows["ci_low"], rows["ci_high"], alpha=0.2)
    axes.set_xlabel("Kendall tau of noisy to clean accuracy")
    axes.set_ylabel(f"{metric.replace('_', ' ')} (mean, 95% CI)")
    axes.legend(fontsize=8)
    axes.set_title("Search quality versus evaluator fidelity")
    return save_figure(figure, path)


# ---------------------------------------------------------------------------- the sweep
def summarise_sweep(sweep_dir: Path, results: Mapping[str, pd.DataFrame]) -> None:
    """After the aggregate: ``aggregate/method_order.csv`` and ``aggregate/fidelity_dial.png`` from
    its ``fidelity`` table (whose method and tau columns are the jobs' ``experiment.*`` settings)."""
    from harness.store import atomic_write_frame

    summary = results["fidelity"].rename(columns={"experiment.method": "method", "experiment.tau": "tau"})
    if "experiment.landscape" in summary.columns:
        raise ValueError(f"the sweep in {sweep_dir} mixes landscapes "
                         f"{sorted(summary['experiment.landscape'].unique())}; run one sweep folder per "
                         "landscape (hydra.sweep.dir=multirun/fidelity_dial_<landscape>)")
    missing = {"method", "tau"} - set(summary.columns)
    if missing:
        raise ValueError(f"the sweep in {sweep_dir} does not vary experiment.{' and experiment.'.join(sorted(missing))}"
                         "; the fidelity_dial summary compares methods across taus")
    atomic_write_frame(method_order_agreement(summary), sweep_dir / "aggregate" / "method_order.csv")
    plot_fidelity_dial(summary, sweep_dir / "aggregate" / "fidelity_dial.png")

# ---------------------------------------------------------------------------- report section
def _sections(run: PaperRun, landscape: str, cfg: dict[str, Any], predictor: str | None,
              predictor_options: Mapping[str, Any], backend_options: Mapping[str, Any],
              where: str) -> list[TableSection]:
    """The fidelity_dial tables of one landscape: the summary and the methods' order per tau."""
    suffix = "" if landscape == "surrogate" else f"_{landscape}"
    sample = {"rank_sample": cfg["rank_sample"]} if "rank_sample" in cfg else {}  # ranks are exact on NB201
    runs = fidelity_runs(cfg["methods"], cfg["taus"], cfg["seeds"], landscape=landscape,
                         max_blocks=cfg.get("max_blocks"), K=cfg["K"], **sample,
                         predictor=predictor, predictor_options=dict(predictor_options),
                         backend_options=backend_options)
    summary = summarise(runs)
    figure = f"fidelity_dial{suffix}.png"
    plot_fidelity_dial(summary, run.figure(figure))
    settings = {**cfg, "seeds": sorted(runs["seed"].unique().tolist()), "predictor": predictor,
                **dict(backend_options)}
    if landscape == "surrogate":
        title = "Search quality versus evaluator fidelity (issue 15)"
        note = ("Each run is one search on the surrogate at evaluator fidelity tau (Kendall tau-b of noisy to "
                "clean accuracy; the clean landscape is the same at every tau). `best_clean_accuracy` is the "
                "clean accuracy of the trained cell with the best noisy accuracy, `clean_top_fraction` the "
                "share of a uniform sample of the space that beats it; mean and 95% Student-t interval over "
                "seeds. A reduced scale; the full study is the `fidelity_dial` sweep (README).")
    else:
        title = "Search quality versus evaluator fidelity on NAS-Bench-201 (issue 15)"
        note = ("Each run is one search on NAS-Bench-201 whose real accuracies are seen through the "
                "surrogate's Gaussian copula at Kendall tau (`backends.nb201`, option `tau`; the real "
                "landscape is the same at every tau). `best_clean_accuracy` is the real accuracy of the "
                "evaluated cell with the best noisy accuracy, `clean_rank` its exact rank among all "
                "15,625 cells (`clean_top_fraction`: the share that beats it), `search_time` the summed "
                "latency in seconds; mean and 95% Student-t interval over seeds. A reduced scale; the full "
                "study is the `fidelity_dial` sweep with `experiment.landscape=nb201` (README).")
    return [
        TableSection(f"fidelity_dial{suffix}", title, summary, notes=note, settings=settings, figures=(figure,)),
        TableSection(f"fidelity_dial{suffix}_order",
                     f"Order of the methods at each tau against the clean landscape{where}",
                     method_order_agreement(summary),
                     notes="Methods best first by mean `best_clean_accuracy`; Kendall's tau-b between that "
                           "order and the order at tau = 1.", settings=settings),
    ]


def sections(run: PaperRun) -> list[TableSection]:
    """The ``fidelity_dial`` study's report sections on the surrogate at the main job's reduced scale
    (the full study, B=5, K=256, 20 seeds, is the fidelity_dial sweep, README): quality versus tau and
    the methods' order."""
    dial, predictor = run.settings.fidelity_dial, run.settings.predictor
    cfg = {"max_blocks": dial.max_blocks, "K": dial.K, "rank_sample": dial.rank_sample, "taus": list(dial.taus),
           "methods": list(dial.methods), "seeds": run.seeds if dial.seeds is None else list(dial.seeds)}
    return _sections(run, "surrogate", cfg, predictor.name, predictor.options,
                     {k: v for k, v in run.settings.surrogate.items() if k != "tau"}, "")


def nb201_sections(run: PaperRun) -> list[TableSection]:
    """The ``fidelity_dial_nb201`` study's report sections: the same on NAS-Bench-201's real accuracies
    through the copula, reduced (the full study, 20 seeds, is the sweep on the nb201 landscape, README)."""
    dial = run.settings.fidelity_dial_nb201
    seeds = list(range(dial.seeds)) if isinstance(dial.seeds, int) else list(dial.seeds)
    cfg = {"K": dial.K, "taus": list(dial.taus), "methods": list(dial.methods), "seeds": seeds}
    options: dict[str, Any] = {key: value for key, value in (("dataset", dial.dataset), ("cost", dial.cost))
                               if value is not None}
    options["data_dir"] = run.settings.nb201.data_dir
    return _sections(run, "nb201", cfg, dial.predictor, {}, options, " (NAS-Bench-201)")


__all__ = ["EXACT_RANK_METRICS", "LANDSCAPES", "Landscape", "METHODS", "METRICS", "QUALITY", "TAUS",
           "fidelity_run", "fidelity_runs", "method_order_agreement", "metrics", "nb201_sections",
           "plot_fidelity_dial", "sections", "summarise", "summarise_sweep"]
