"""Studies ``popnas_table7``, ``popnas_table8`` and ``pnas_fig4``: what the searches find, and at what cost.

Each function takes finished searches' ``trained`` tables (or runs the
searches, for ``pnas_fig4``) and returns a DataFrame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from backends.base import Backend
from harness.search import PNAS, RandomSearch, RegularizedEvolution
from harness.space import CellSpace


def popnas_table7(trained: pd.DataFrame, tops: Sequence[int] = (1, 5, 25)) -> pd.DataFrame:
    """Mean accuracy of the top 1, 5, 25 and all K trained cells of each step (POPNAS Table 7).

    Layout ``top`` ("1", "5", "25", "K"), ``blocks`` (the step), ``mean_accuracy``,
    ``cells`` (how many the step trained; POPNAS may train fewer than K).
    """
    rows = []
    cells = trained[trained["blocks"] > 0]
    for step, group in cells.groupby("step"):
        ranked = group["accuracy"].sort_values(ascending=False)
        # "K" is every cell the step trained: K, or fewer when POPNAS's front is smaller
        for label, top in [*((str(t), t) for t in tops), ("K", len(group))]:
            rows.append({"top": label, "blocks": int(step),
                         "mean_accuracy": float(ranked.iloc[:top].mean()), "cells": len(group)})
    return pd.DataFrame(rows)


def popnas_table8(pnas: pd.DataFrame, popnas: pd.DataFrame) -> pd.DataFrame:
    """Best cell and search cost of PNAS versus POPNAS (POPNAS Table 8 and section 4.2).

    Layout ``quantity``, ``search``, ``step`` (0 for whole-run quantities),
    ``value``. Training times are the backend's (seconds; minutes where the
    quantity says so, to match the paper).
    """
    rows = []
    for name, trained in (("pnas", pnas), ("popnas", popnas)):
        cells = trained[trained["blocks"] > 0]
        best = cells.loc[cells["accuracy"].idxmax()]
        rows += [
            {"quantity": "best cell accuracy", "search": name, "step": 0, "value": float(best["accuracy"])},
            {"quantity": "best cell training time [min]", "search": name, "step": 0,
             "value": float(best["train_time"]) / 60},
            {"quantity": "search training time [min]", "search": name, "step": 0,
             "value": float(trained["train_time"].sum()) / 60},
        ]
        for step, group in trained.groupby("step"):
            rows += [
                {"quantity": "step training time [min]", "search": name, "step": int(step),
                 "value": float(group["train_time"].sum()) / 60},
                {"quantity": "mean training time per cell [s]", "search": name, "step": int(step),
                 "value": float(group["train_time"].mean())},
                {"quantity": "mean accuracy of trained cells", "search": name, "step": int(step),
                 "value": float(group.loc[group["blocks"] > 0, "accuracy"].mean())},
            ]
    frame = pd.DataFrame(rows)
    total = frame[frame["quantity"] == "search training time [min]"].set_index("search")["value"]
    speedup = pd.DataFrame([{"quantity": "speed-up of POPNAS over PNAS (training time)", "search": "popnas",
                             "step": 0, "value": float(total["pnas"] / total["popnas"])}])
    return pd.concat([frame, speedup], ignore_index=True)


def pnas_fig4(space: CellSpace, backend: Backend, K: int, trials: Sequence[int],
              ms: Sequence[int] = (1, 5, 25), output_dir: Path | None = None,
              pnas_options: dict | None = None, evolution_options: dict | None = None) -> pd.DataFrame:
    """Mean accuracy of the top M models against models trained: PNAS, random search, evolution.

    One search per strategy and trial (seed); each is resumable under
    ``output_dir/<strategy>-seed<seed>``. Returns ``strategy, M,
    models_trained, mean, std, trials`` (mean and std over trials).
    """
    strategies = {
        "PNAS": lambda seed: PNAS(space, backend, K=K, seed=seed, **(pnas_options or {})),
        "random search": lambda seed: RandomSearch(space, backend, K=K, seed=seed),
        "regularized evolution": lambda seed: RegularizedEvolution(space, backend, K=K, seed=seed,
                                                                  **(evolution_options or {})),
    }
    curves = []
    for label, build in strategies.items():
        for seed in trials:
            strategy = build(seed)
            folder = None if output_dir is None else output_dir / f"{strategy.name}-seed{seed}"
            curve = strategy.run(folder).top_m_curve(ms)
            curves.append(curve.assign(strategy=label, seed=seed))
    curves = pd.concat(curves, ignore_index=True)
    summary = (curves.groupby(["strategy", "M", "step"], sort=False)
               .agg(models_trained=("models_trained", "first"), mean=("mean_top_accuracy", "mean"),
                    std=("mean_top_accuracy", "std"), trials=("seed", "nunique"))
               .reset_index().drop(columns="step"))
    return summary
