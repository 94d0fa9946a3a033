"""Search quality as a function of evaluator fidelity: the ``fidelity_dial`` study (issue 15).

The surrogate sets the Kendall tau-b between a cell's noisy (measured) and clean accuracy exactly
(``backends.surrogate``), and the clean landscape does not depend on it. So each ``tau`` is the
same landscape seen through a noisier evaluator, and running PNAS, POPNAS, random search and
regularized evolution at several ``tau`` says how much evaluator noise costs each of them.

One run (:func:`fidelity_run`) is one search with one seed at one ``tau``; it records

* ``best_clean_accuracy``: the clean accuracy of the cell the search would hand a user, the one
  with the highest *noisy* accuracy among those it trained (first one on ties);
* ``best_noisy_accuracy`` (that cell's measured accuracy) and ``oracle_clean_accuracy`` (the best
  clean accuracy among the trained cells: what a noise-free pick would have got);
* ``clean_top_fraction``: the fraction of the space whose clean accuracy beats the picked cell's,
  estimated on a uniform sample of ``rank_sample`` cells with ``max_blocks`` blocks (the space is
  almost all such cells: at B = 5 the smaller ones are 0.1 % of it), so 0 is "better than
  every sampled cell";
* ``search_time``: the surrogate's training seconds of every trained cell (POPNAS's point is to
  lower it), and ``cells_trained`` (cells with blocks).

Budgets: PNAS, random search and evolution train the same number of cells (all one-block cells
at step 1, then ``K`` a step; evolution's population is the one-block count). POPNAS trains at
most ``K`` a step, fewer when the predicted Pareto front is smaller; ``cells_trained`` shows it.

Runs are summarised (:func:`summarise`) per ``(method, tau)`` as the mean over seeds with a
Student-t 95 % interval (``harness.metrics.mean_interval``, the sweep aggregate's own), in the long
layout the sweep aggregate writes (``method, tau, metric, mean, std, ci_low, ci_high,
n_seeds``). :func:`method_order_agreement` then compares, at each ``tau``, the order of the
methods by mean ``best_clean_accuracy`` with their order on the clean landscape (``tau = 1``):
Kendall's tau-b between the two orders (1: noise leaves the ranking of the methods alone).
:func:`plot_fidelity_dial` draws quality against ``tau`` per method.

Where it runs
    * as a sweep, one job per (method, tau, seed), aggregated by ``popnas-harness-aggregate``
      (experiment ``fidelity_dial``, see the README), which also writes the order agreement and
      the figure (:func:`summarise_sweep`);
    * in the main job at reduced scale (``settings.fidelity_dial``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ablations.report import TableSection
from backends.surrogate import SurrogateBackend
from harness.metrics import mean_interval
from harness.space import CellSpace
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

#: The study's evaluator fidelities (Kendall tau-b of noisy to clean accuracy); 1 is the clean landscape.
TAUS: tuple[float, ...] = (0.55, 0.65, 0.75, 0.85, 0.95, 1.0)

#: The searches compared, by ``harness.search`` strategy name.
METHODS: tuple[str, ...] = ("pnas", "popnas", "random", "evolution")

#: A run's measured values (one row per run), in the order tables list them.
METRICS: tuple[str, ...] = ("best_clean_accuracy", "best_noisy_accuracy", "oracle_clean_accuracy",
                            "clean_top_fraction", "search_time", "cells_trained")

#: The quality the figure and the order agreement read.
QUALITY = "best_clean_accuracy"


def _strategy(method: str, space: CellSpace, backend: SurrogateBackend, K: int, seed: int,
              predictor: str, predictor_options: Mapping[str, Any]):
    """The search ``method`` with the study's budget (see the module docstring)."""
    from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution

    if method in ("pnas", "popnas"):
        cls = PNAS if method == "pnas" else POPNAS
        return cls(space, backend, K=K, seed=seed, predictor=predictor,
                   predictor_options=dict(predictor_options))
    if method == "random":
        return RandomSearch(space, backend, K=K, seed=seed)
    if method == "evolution":
        # the population is step 1's size, as many cells as PNAS's first step trains
        population = len(space.initial_cells())
        return RegularizedEvolution(space, backend, K=K, seed=seed, population_size=population,
                                    sample_size=min(25, population))
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


def fidelity_run(method: str, tau: float, seed: int, *, max_blocks: int = 5, K: int = 256,
                 rank_sample: int = 100_000, predictor: str = "mlp-ensemble",
                 predictor_options: Mapping[str, Any] | None = None,
                 surrogate_options: Mapping[str, Any] | None = None,
                 output_dir: str | Path | None = None) -> dict[str, Any]:
    """One search ``method`` with ``seed`` on the surrogate at ``tau``: the row of :data:`METRICS`.

    ``predictor``/``predictor_options`` are PNAS's and POPNAS's accuracy predictor
    (``harness.predictors.make_predictor``); ``surrogate_options`` go to the surrogate (not
    ``tau``); ``output_dir`` keeps the search's checkpoints (``None``: in memory).
    """
    surrogate_options = dict(surrogate_options or {})
    if "tau" in surrogate_options:
        raise ValueError("surrogate_options must not set tau: the study sets it per run")
    check_integer("rank_sample", rank_sample)
    space = CellSpace.pnas(max_blocks=max_blocks)
    backend = SurrogateBackend(space=space, tau=tau, **surrogate_options)
    strategy = _strategy(method, space, backend, K, seed, predictor, predictor_options or {})
    trained = strategy.run(output_dir).trained
    cells = trained[trained["blocks"] > 0].reset_index(drop=True)
    pick = cells.loc[cells["accuracy"].idxmax()]
    clean = float(pick["accuracy_clean"])
    sample = _sampled_clean(max_blocks, int(rank_sample), tuple(sorted(surrogate_options.items())))
    return {
        "method": method, "tau": float(tau), "seed": int(seed),
        "best_clean_accuracy": clean,
        "best_noisy_accuracy": float(pick["accuracy"]),
        "oracle_clean_accuracy": float(cells["accuracy_clean"].max()),
        "clean_top_fraction": float(len(sample) - np.searchsorted(sample, clean, side="right")) / len(sample),
        "search_time": float(trained["train_time"].sum()),
        "cells_trained": int(len(cells)),
    }


def fidelity_runs(methods: Sequence[str] = METHODS, taus: Sequence[float] = TAUS,
                  seeds: Sequence[int] = range(20), **options: Any) -> pd.DataFrame:
    """:func:`fidelity_run` for every method, tau and seed (in this process), one row each."""
    return pd.DataFrame([fidelity_run(method, tau, seed, **options)
                         for method in methods for tau in taus for seed in seeds])


def summarise(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per ``(method, tau, metric)``: mean over seeds, std and Student-t interval, and the seed count
    (the sweep aggregate's layout and arithmetic)."""
    rows = []
    for (method, tau), group in runs.groupby(["method", "tau"], sort=True):
        for metric in METRICS:
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
    missing = {"method", "tau"} - set(summary.columns)
    if missing:
        raise ValueError(f"the sweep in {sweep_dir} does not vary experiment.{' and experiment.'.join(sorted(missing))}"
                         "; the fidelity_dial summary compares methods across taus")
    atomic_write_frame(method_order_agreement(summary), sweep_dir / "aggregate" / "method_order.csv")
    plot_fidelity_dial(summary, sweep_dir / "aggregate" / "fidelity_dial.png")

# ---------------------------------------------------------------------------- report section
def sections(run: PaperRun) -> list[TableSection]:
    """The ``fidelity_dial`` study's report sections at the main job's reduced scale: quality versus tau and
    the methods' order."""
    # reduced scale: the full study (B=5, K=256, 20 seeds) is the fidelity_dial sweep (README)
    dial, predictor = run.settings.fidelity_dial, run.settings.predictor
    runs = fidelity_runs(list(dial.methods), list(dial.taus), run.seeds if dial.seeds is None else list(dial.seeds),
                         max_blocks=dial.max_blocks, K=dial.K, rank_sample=dial.rank_sample,
                         predictor=predictor.name, predictor_options=dict(predictor.options),
                         surrogate_options={k: v for k, v in run.settings.surrogate.items() if k != "tau"})
    cfg = {"max_blocks": dial.max_blocks, "K": dial.K, "rank_sample": dial.rank_sample, "taus": list(dial.taus),
           "methods": list(dial.methods)}
    summary = summarise(runs)
    plot_fidelity_dial(summary, run.figure("fidelity_dial.png"))
    settings = {**cfg, "seeds": sorted(runs["seed"].unique().tolist()),
                "predictor": predictor.name}
    note = ("Each run is one search on the surrogate at evaluator fidelity tau (Kendall tau-b of noisy to "
            "clean accuracy; the clean landscape is the same at every tau). `best_clean_accuracy` is the "
            "clean accuracy of the trained cell with the best noisy accuracy, `clean_top_fraction` the "
            "share of a uniform sample of the space that beats it; mean and 95% Student-t interval over "
            "seeds. A reduced scale; the full study is the `fidelity_dial` sweep (README).")
    return [
        TableSection("fidelity_dial", "Search quality versus evaluator fidelity (issue 15)", summary,
                     notes=note, settings=settings, figures=("fidelity_dial.png",)),
        TableSection("fidelity_dial_order", "Order of the methods at each tau against the clean landscape",
                     method_order_agreement(summary),
                     notes="Methods best first by mean `best_clean_accuracy`; Kendall's tau-b between that "
                           "order and the order at tau = 1.", settings=settings),
    ]


__all__ = ["METHODS", "METRICS", "QUALITY", "TAUS", "fidelity_run", "fidelity_runs", "method_order_agreement",
           "plot_fidelity_dial", "sections", "summarise", "summarise_sweep"]
