"""Studies ``popnas_table7``, ``popnas_table8`` and ``pnas_fig4``: what the searches find, and at what cost.

Each function takes finished searches' ``trained`` tables and returns a DataFrame.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from harness.search.base import top_m_curve


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


def pnas_fig4(trained_by_strategy: Mapping[str, Sequence[pd.DataFrame]],
              ms: Sequence[int] = (1, 5, 25)) -> pd.DataFrame:
    """Mean accuracy of the top M models against models trained, per strategy (PNAS Fig. 4).

    ``trained_by_strategy`` maps a label ("PNAS", "random search", ...) to
    the ``trained`` tables of its trials. Returns ``strategy, M,
    models_trained, mean, std, trials`` (mean and std over trials).
    """
    curves = pd.concat([top_m_curve(trained, ms).assign(strategy=label, trial=trial)
                        for label, runs in trained_by_strategy.items()
                        for trial, trained in enumerate(runs)], ignore_index=True)
    return (curves.groupby(["strategy", "M", "step"], sort=False)
            .agg(models_trained=("models_trained", "first"), mean=("mean_top_accuracy", "mean"),
                 std=("mean_top_accuracy", "std"), trials=("trial", "nunique"))
            .reset_index().drop(columns="step"))
