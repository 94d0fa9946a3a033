"""The report's figures, drawn from finished tables (no study runs here).

Figures are built on matplotlib's object API (no pyplot, so a notebook's
backend is left alone) and written atomically as PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.store import atomic_write_bytes


def new_figure(width: float = 6.0, height: float = 4.5) -> Figure:
    """A figure attached to an Agg canvas."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` atomically; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are written as PNG; got a path ending in {path.suffix!r}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def draw_predicted_versus_real(predictions: pd.DataFrame, by: str, title: str) -> Figure:
    """Predicted against real training time, one panel per value of ``by`` (POPNAS Figs. 4-5).

    Each step (the block count the regressor predicted) is one colour, named in the legend of the
    first panel, so a reader can tell which step's cells lie where.
    """
    groups = list(predictions.groupby(by, sort=False))
    steps = sorted(predictions["step"].unique())
    colours = dict(zip(steps, matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(steps)))))
    figure = new_figure(3.2 * len(groups), 3.4)
    high = float(np.nanmax(predictions[["real", "predicted"]].to_numpy()))
    for k, (name, group) in enumerate(groups, start=1):
        axes = figure.add_subplot(1, len(groups), k)
        for step, rows in group.groupby("step"):
            axes.scatter(rows["real"], rows["predicted"], s=6, color=colours[step], label=f"step {step}")
        axes.plot([0, high], [0, high], color="grey", linewidth=0.8)
        axes.set_title(str(name))
        axes.set_xlabel("real time [s]")
        if k == 1:
            axes.set_ylabel("predicted time [s]")
            axes.legend(fontsize=7, title="predicted step", title_fontsize=7)
    figure.suptitle(title)
    return figure


def predicted_versus_real(predictions: pd.DataFrame, by: str, path: str | Path, title: str) -> Path:
    """:func:`draw_predicted_versus_real`, written as a PNG at ``path``."""
    return save_figure(draw_predicted_versus_real(predictions, by, title), path)


def pareto_picks(predictions: pd.DataFrame, step: int, path: str | Path, title: str) -> Path:
    """All candidates of a POPNAS step in predicted time-accuracy space, the front, and the
    cells PNAS (top-K by accuracy) and POPNAS (front) pick (POPNAS Figs. 6-7)."""
    rows = predictions[predictions["step"] == step]
    figure = new_figure(6.5, 4.5)
    axes = figure.add_subplot()
    axes.scatter(rows["predicted_time"], rows["predicted_accuracy"], s=3, color="tab:blue", alpha=0.3,
                 label="candidates" + (" (sample)" if rows["sampled"].any() else ""))
    pnas = rows[rows["pnas_pick"]]
    axes.scatter(pnas["predicted_time"], pnas["predicted_accuracy"], s=8, color="gold", label="PNAS top-K")
    front = rows[rows["on_front"]].sort_values("predicted_time")
    axes.plot(front["predicted_time"], front["predicted_accuracy"], color="tab:green", linewidth=1, drawstyle="steps-post",
              label="Pareto front")
    chosen = rows[rows["selected"]]
    axes.scatter(chosen["predicted_time"], chosen["predicted_accuracy"], s=10, color="tab:red",
                 label="POPNAS picks")
    axes.set_xlabel("predicted training time [s]")
    axes.set_ylabel("predicted accuracy")
    axes.set_title(title)
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def _lines_with_bands(axes: Any, frame: pd.DataFrame, by: str, x: str, y: str, alpha: float) -> None:
    """One marked line of ``y`` against ``x`` per ``by`` group, with its ``low``-``high`` band."""
    for label, rows in frame.groupby(by, sort=False):
        rows = rows.sort_values(x)
        axes.plot(rows[x], rows[y], marker="o", markersize=3, label=label)
        axes.fill_between(rows[x], rows["low"], rows["high"], alpha=alpha)


def top_m_curves(curves: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Mean accuracy of the top M models against models trained, per strategy (PNAS Fig. 4).

    ``curves`` has ``strategy, M, models_trained, mean, std``.
    """
    ms = sorted(curves["M"].unique())
    figure = new_figure(3.4 * len(ms), 3.4)
    for k, m in enumerate(ms, start=1):
        axes = figure.add_subplot(1, len(ms), k)
        rows = curves[curves["M"] == m]
        _lines_with_bands(axes, rows.assign(low=rows["mean"] - rows["std"], high=rows["mean"] + rows["std"]),
                          "strategy", "models_trained", "mean", alpha=0.2)
        axes.set_title(f"top {m}")
        axes.set_xlabel("models trained")
        if k == 1:
            axes.set_ylabel("mean accuracy")
            axes.legend(fontsize=8)
    figure.suptitle(title)
    return save_figure(figure, path)


def train_size_curves(sweep: pd.DataFrame, metrics: Sequence[str], path: str | Path, title: str) -> Path:
    """A metric against the training-set size (log axis), one panel per metric, one line per model with
    its bootstrap interval as a band. ``sweep`` has ``model, n_train, metric, value, ci_low, ci_high``
    (:func:`ablations.nb201_train_sizes.nb201_train_sizes`)."""
    figure = new_figure(3.4 * len(metrics), 3.4)
    for k, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), k)
        rows = sweep[sweep["metric"] == metric]
        _lines_with_bands(axes, rows.rename(columns={"ci_low": "low", "ci_high": "high"}), "model", "n_train",
                          "value", alpha=0.15)
        axes.set_xscale("log")
        axes.set_title(metric.replace("_", " "), fontsize=9)
        axes.set_xlabel("cells in the training set")
        if k == 1:
            axes.legend(fontsize=7)
    figure.suptitle(title)
    return save_figure(figure, path)


def time_limit_tradeoff(table: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Accuracy against total training time, one curve per search over the time limits L.

    ``table`` has ``ablations.search_comparisons.popnas_time_limit``'s columns
    (mean over seeds): left the best cell, right the last step's mean; each
    point is labelled with its L's quantile ("none" = no limit).
    """
    figure = new_figure(9.0, 3.8)
    for k, column in enumerate(("best cell accuracy", "mean accuracy of the last step's cells"), start=1):
        axes = figure.add_subplot(1, 2, k)
        for search, rows in table.groupby("search", sort=False):
            rows = rows.sort_values("search training time [min]")
            axes.plot(rows["search training time [min]"], rows[column], marker="o", markersize=4, label=search)
            for _, row in rows.iterrows():
                label = "none" if np.isnan(row["quantile"]) else f"q{row['quantile']:g}"
                axes.annotate(label, (row["search training time [min]"], row[column]), fontsize=7,
                              textcoords="offset points", xytext=(3, 3))
        axes.set_xlabel("search training time [min]")
        axes.set_ylabel(column)
        if k == 1:
            axes.legend(fontsize=8)
    figure.suptitle(title)
    return save_figure(figure, path)


def _panels(frame: pd.DataFrame) -> tuple[Figure, list[tuple[Any, pd.DataFrame, bool, bool]]]:
    """A figure with one panel per (dataset row, device column) of ``frame``, and per panel
    ``(axes, its rows, first column?, first panel?)``, each panel already titled."""
    datasets, devices = list(dict.fromkeys(frame["dataset"])), list(dict.fromkeys(frame["device"]))
    figure = new_figure(3.6 * len(devices), 3.2 * len(datasets))
    panels = []
    for row, dataset in enumerate(datasets):
        for column, device in enumerate(devices):
            axes = figure.add_subplot(len(datasets), len(devices), row * len(devices) + column + 1)
            axes.set_title(f"{dataset}, {device}", fontsize=9)
            rows = frame[(frame["dataset"] == dataset) & (frame["device"] == device)]
            panels.append((axes, rows, column == 0, row == 0 and column == 0))
    return figure, panels


def _label_panel(axes: Any, xlabel: str, ylabel: str, first_column: bool, first: bool) -> None:
    """Axis labels of one panel of :func:`_panels`: the y label on the first column, the legend once."""
    axes.set_xlabel(xlabel)
    if first_column:
        axes.set_ylabel(ylabel)
    if first:
        axes.legend(fontsize=7)


def anytime_hypervolume_curves(anytime: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Normalised hypervolume against cells evaluated, mean over seeds with the min-max band,
    one panel per (dataset, device), one line per method.

    ``anytime`` has ``dataset, device, method, seed, evaluated, normalised_hypervolume``; a run
    that stopped early (POPNAS with small fronts) ends its line where it stopped.
    """
    figure, panels = _panels(anytime)
    for axes, rows, first_column, first in panels:
        for method, group in rows.groupby("method", sort=False):
            # only cell counts every seed reached, so the mean is over all seeds
            reached = group.groupby("seed")["evaluated"].max().min()
            stats = (group[group["evaluated"] <= reached].groupby("evaluated")["normalised_hypervolume"]
                     .agg(["mean", "min", "max"]))
            axes.plot(stats.index, stats["mean"], label=method, linewidth=1.2)
            axes.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15)
        _label_panel(axes, "cells evaluated", "hypervolume / true front's", first_column, first)
    figure.suptitle(title)
    return save_figure(figure, path)


def fronts_found(fronts: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Each method's front of evaluated cells against the true accuracy-latency front, one panel
    per (dataset, device). ``fronts`` has ``dataset, device, method, accuracy, cost``; the method
    ``"true front"`` is the exhaustive one."""
    figure, panels = _panels(fronts)
    for axes, rows, first_column, first in panels:
        for method, group in rows.groupby("method", sort=False):
            group = group.sort_values("cost")
            true = method == "true front"
            axes.plot(group["cost"], 100 * group["accuracy"], drawstyle="steps-post",
                      color="black" if true else None, linewidth=1.6 if true else 0.9,
                      marker=None if true else "o", markersize=2.5, label=method)
        axes.set_xscale("log")
        # the minor ticks' labels overlap on a log axis spanning less than a decade
        axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        _label_panel(axes, "latency [ms]", "test accuracy [%]", first_column, first)
    figure.suptitle(title)
    return save_figure(figure, path)
