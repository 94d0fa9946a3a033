"""Studies ``popnas_table3`` to ``popnas_table6``: how well time regressors predict the next step.

Protocol (POPNAS 4.1): a PNAS run records every trained cell's time. For
each step ``b`` from 2 on, a regressor is fitted on the rows measured before
step ``b`` (POPNAS's training rows, with the initial-thrust row at ``b = 2``)
and predicts the cells trained at step ``b``. The paper labels the columns by
the block count predicted ("B = 2" is the regressor fitted on one-block cells
predicting two-block cells). *Proper* error averages the relative errors of
step ``b`` alone; *progressive* error pools all predictions from step 2 to
``b``. Relative error is ``|predicted - real| / real``.

Everything takes a finished search's ``trained`` table, so the same code
serves the surrogate, the embedded measured table and any recorded run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, clone

from ablations import figures, paper_numbers
from ablations.report import TableSection, aggregate_sources
from harness.encodings import PAPER_VARIANTS, EncodingConfig
from harness.regressors import make_time_regressor, relative_error
from harness.resolution import TIME_RESOLUTION, on_grid
from harness.space import CellSpace

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

#: Table 3's regressors, by the names of ``harness.regressors.make_regressor``.
TABLE3_REGRESSORS = ("block_sum", "ridge", "nnls", "xgboost")

#: The regressor Table 3 adds to the paper's: NNLS on the child network's analytic parameter count and
#: FLOPs (``harness.cost_features.CostFeatures``), time = a + b * params + c * FLOPs with b, c >= 0.
COST_REGRESSOR = "cost_nnls"


@dataclass(frozen=True)
class TimeModel:
    """A labelled time regressor and the encoding its training rows follow."""

    regressor: str
    variant: str
    estimator: BaseEstimator
    encoding: EncodingConfig


def time_model(regressor: str, variant: str, space: CellSpace, **options) -> TimeModel:
    """The regressor ``regressor`` on the encoding ``variant`` of :data:`PAPER_VARIANTS`."""
    encoding = PAPER_VARIANTS[variant]
    estimator = make_time_regressor(regressor, encoding, max_blocks=space.max_blocks,
                                    lookback=space.lookback, **options)
    return TimeModel(regressor, variant, estimator, encoding)


def cost_model(space: CellSpace, network: dict | None = None) -> TimeModel:
    """:data:`COST_REGRESSOR` for ``space``'s network (``network``: ``CostFeatures``' options); its training
    rows follow the standard encoding's (the initial-thrust row at step 2)."""
    from harness.cost_features import CostFeatures
    from harness.regressors import feature_time_regressor

    estimator = feature_time_regressor("nnls", CostFeatures(space=space.name, network=network))
    return TimeModel(COST_REGRESSOR, "cost", estimator, PAPER_VARIANTS["standard"])


def prediction_rows(trained: pd.DataFrame, space: CellSpace, models: list[TimeModel]) -> pd.DataFrame:
    """One row per (model, evaluated cell): ``step``, ``cell``, ``real``, ``predicted``, ``relative_error``.

    ``trained`` needs ``step``, ``cell``, ``blocks`` and ``train_time``, as a
    search's ``SearchResult.trained`` has them.
    """
    frames = []
    for step in sorted(s for s in trained["step"].unique() if s >= 2):
        target = trained[(trained["step"] == step) & (trained["blocks"] > 0)]
        x_target = space.to_matrix(space.parse_many(target["cell"]))
        for model in models:
            rows = model.encoding.training_rows(trained, step)
            fitted = clone(model.estimator).fit(space.to_matrix(space.parse_many(rows["cell"])),
                                                rows["train_time"].to_numpy())
            predicted = np.asarray(fitted.predict(x_target), dtype=np.float64)
            real = target["train_time"].to_numpy()
            frames.append(pd.DataFrame({
                "regressor": model.regressor, "variant": model.variant, "step": int(step),
                "blocks": target["blocks"].to_numpy(), "cell": target["cell"].to_numpy(),
                "real": real, "predicted": predicted, "relative_error": relative_error(real, predicted),
            }))
    return pd.concat(frames, ignore_index=True)


def proper_and_progressive(predictions: pd.DataFrame, keys: list[str], kendall: bool = False) -> pd.DataFrame:
    """Mean relative error per step (``proper``) and pooled from the first step on (``progressive``).

    Long layout: ``keys``, ``evaluation``, ``blocks`` (the step, i.e. the
    block count predicted), ``mean_relative_error``, ``n``; with ``kendall``
    also ``kendall_tau``, Kendall's tau-b between the predicted and the real
    times of the same predictions (NaN when either is constant).
    """
    rows = []
    for key, group in predictions.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for step in sorted(group["step"].unique()):
            for evaluation, part in (("proper", group[group["step"] == step]),
                                     ("progressive", group[group["step"] <= step])):
                rows.append({**dict(zip(keys, key)), "evaluation": evaluation, "blocks": int(step),
                             "mean_relative_error": float(part["relative_error"].mean()),
                             "n": len(part)})
                if kendall:
                    rows[-1]["kendall_tau"] = _kendall(part["predicted"].to_numpy(), part["real"].to_numpy())
    return pd.DataFrame(rows)


def _kendall(predicted: np.ndarray, real: np.ndarray) -> float:
    """Kendall's tau-b, NaN for fewer than two pairs or constant values (no warning).

    Predicted times are ranked on the time grid (:mod:`harness.resolution`): times tied on paper
    (cells with the same features) stay tied on every machine.
    """
    predicted = on_grid(predicted, TIME_RESOLUTION)
    if len(real) < 2 or np.ptp(predicted) == 0 or np.ptp(real) == 0:
        return float("nan")
    return float(stats.kendalltau(predicted, real).statistic)


def popnas_table3(trained: pd.DataFrame, space: CellSpace, xgboost_options: dict | None = None,
                  cost_network: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3: block sum, Ridge, NNLS, XGBoost on the standard encoding, and :data:`COST_REGRESSOR`
    (:func:`cost_model` with ``cost_network``, the options of the trained network: ``CostFeatures``').

    Returns the summary table and the per-prediction rows (for the
    predicted-versus-real figure).
    """
    models = [time_model(name, "standard", space, **(xgboost_options or {}) if name == "xgboost" else {})
              for name in TABLE3_REGRESSORS] + [cost_model(space, cost_network)]
    predictions = prediction_rows(trained, space, models)
    return proper_and_progressive(predictions, ["regressor"]), predictions


def popnas_table4(trained: pd.DataFrame, space: CellSpace) -> pd.DataFrame:
    """Table 4: Ridge and NNLS times {standard, reordered, without inputs, reordered without inputs}."""
    variants = ("standard", "reordered", "without_inputs", "reordered_without_inputs")
    models = [time_model(r, v, space) for r in ("ridge", "nnls") for v in variants]
    return proper_and_progressive(prediction_rows(trained, space, models), ["regressor", "variant"])


def popnas_table5_and_6(trained: pd.DataFrame, space: CellSpace
                        ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Tables 5 and 6: NNLS with static versus dynamic re-index (both without inputs).

    Table 5 pools every prediction (mean, max, min relative error); Table 6
    splits the mean per step, proper and progressive. Also returns the
    per-prediction rows (POPNAS Fig. 5).
    """
    models = [time_model("nnls", "reordered_without_inputs", space),
              time_model("nnls", "dynamic_without_inputs", space)]
    predictions = prediction_rows(trained, space, models)
    predictions["reindex"] = np.where(predictions["variant"].str.startswith("dynamic"), "dynamic", "static")
    table5 = (predictions.groupby("reindex", sort=False)["relative_error"]
              .agg(mean="mean", max="max", min="min").reset_index()
              .melt(id_vars="reindex", var_name="statistic", value_name="relative_error"))
    table6 = proper_and_progressive(predictions, ["reindex"])
    return table5, table6, predictions


#: The pseudo-regressor rows :func:`noise_floor_rows` adds beside the regressors.
NOISE_FLOOR = "noise floor"
STEP_DRIFT = "step drift"


def noise_floor_rows(per_step: pd.DataFrame, steps: int) -> pd.DataFrame:
    """What measurement error alone costs a time regressor, in Table 3's long layout.

    ``per_step`` is a drift monitor's per-step summary
    (``harness.search.drift.drift_summary``: ``step``, ``drift_factor``,
    ``noise_floor``). Two pseudo-regressors per ``blocks`` b = 2..``steps``:
    ``noise floor``, the mean relative error a predictor of each cell's
    expected time makes on a single noisy measurement (step b's repeat
    noise); ``step drift``, ``|d_b / d_{b-1} - 1|``, the error a perfect
    regressor fitted on step b-1's times makes on step b's when the machine's
    speed changed by the drift factors ``d`` in between. ``proper`` is step
    b's value, ``progressive`` the mean over steps 2..b.
    """
    missing = [c for c in ("step", "drift_factor", "noise_floor") if c not in per_step.columns]
    if missing:
        raise ValueError(f"the drift summary lacks the columns {missing}")
    frame = per_step.set_index("step").sort_index()
    drift = (frame["drift_factor"] / frame["drift_factor"].shift(1) - 1).abs()
    rows = []
    for name, values in ((NOISE_FLOOR, frame["noise_floor"]), (STEP_DRIFT, drift)):
        for b in range(2, steps + 1):
            if b not in values.index:
                continue
            for evaluation, part in (("proper", values.loc[[b]]), ("progressive", values.loc[2:b])):
                rows.append({"regressor": name, "evaluation": evaluation, "blocks": b,
                             "mean_relative_error": float(part.mean()), "n": int(part.notna().sum())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- report section
def _regressor_sources(run: PaperRun) -> list[tuple[str, int | None, pd.DataFrame]]:
    """(source, seed, PNAS trained table) pairs the time-regressor studies run on.

    The surrogate's are the first ``regressors.max_blocks`` steps (the paper
    ablates with B = 4) of the PNAS searches the other studies share.
    """
    steps, searches = run.settings.regressors.max_blocks, run.settings.searches
    sources = []
    for seed in run.seeds:
        trained = run.search("pnas", searches.max_blocks, searches.K, seed)
        sources.append(("surrogate", seed, trained[trained["step"] <= steps]))
    measured = run.measured_run("pnas")
    if measured is not None:
        sources.append(("measured", None, measured[measured["step"] <= steps]))
    return sources


#: The child network the cost-feature regressor of Table 3 counts for the surrogate's rows: the one the
#: embedded measured table was recorded with (digits, F = 8, N = 1, PNAS's add and reduction), to whose
#: times the surrogate's time model is fitted (backends.time_fit). The measured rows use their own
#: table's recorded network (harness.cost_features.training_network).
SURROGATE_COST_NETWORK: dict[str, Any] = {"combiner": "add", "reduction": "pnas", "filters": 8,
                                          "cells_per_stage": 1, "image_size": 8, "in_channels": 1,
                                          "num_classes": 10}


def _cost_network(source: str, trained: pd.DataFrame) -> dict[str, Any]:
    """The network Table 3's cost features count for one source's cells."""
    from harness.cost_features import training_network

    if source != "measured" or "backend_options" not in trained.columns:
        return SURROGATE_COST_NETWORK
    return training_network(json.loads(trained["backend_options"].iloc[0]))


def regressor_tables(run: PaperRun) -> tuple[dict[str, list[pd.DataFrame]], pd.DataFrame, pd.DataFrame]:
    """The fitting of the ``popnas_regressors`` study: per source and seed, the rows of POPNAS Tables 3-6
    (``"table3"`` .. ``"table6"``, with the measured table's noise floor where it has a drift monitor)
    and the predictions behind Figs. 4 (Table 3's regressors) and 5 (Tables 5-6's re-indexing)."""
    cfg = run.settings.regressors
    space = CellSpace.pnas(max_blocks=run.settings.searches.max_blocks)
    xgboost = {"param_grid": cfg.xgboost_grid} if cfg.xgboost_grid else {}
    tables: dict[str, list[pd.DataFrame]] = {"table3": [], "table4": [], "table5": [], "table6": []}
    p3, p56 = [], []
    for source, seed, trained in _regressor_sources(run):
        tag = {"source": source, "seed": seed}
        table3, predictions3 = popnas_table3(trained, space, xgboost, _cost_network(source, trained))
        tables["table3"].append(table3.assign(**tag))
        tables["table4"].append(popnas_table4(trained, space).assign(**tag))
        table5, table6, predictions56 = popnas_table5_and_6(trained, space)
        tables["table5"].append(table5.assign(**tag))
        tables["table6"].append(table6.assign(**tag))
        p3.append(predictions3.assign(**tag))
        p56.append(predictions56.assign(**tag))
    drift = run.measured_drift("pnas")
    if drift is not None:
        # measurement error beside the regressors' (harness.search.drift): the 'measured' rows only
        floor = noise_floor_rows(drift, cfg.max_blocks).assign(source="measured", seed=None)
        tables["table3"].append(floor)
        tables["table6"].append(floor[floor["regressor"] == NOISE_FLOOR].rename(columns={"regressor": "reindex"}))
        tables["table5"].append(pd.DataFrame({
            "reindex": [NOISE_FLOOR], "statistic": ["mean"], "source": ["measured"], "seed": [None],
            "relative_error": [floor.query("regressor == @NOISE_FLOOR and evaluation == 'progressive'")
                               ["mean_relative_error"].iloc[-1]]}))
    return tables, pd.concat(p3), pd.concat(p56)


def _regressor_figures(run: PaperRun, table3_predictions: pd.DataFrame,
                       table56_predictions: pd.DataFrame) -> list[str]:
    """POPNAS Figs. 4 and 5 per source, one run each (the measured table, the surrogate's first seed);
    the sources drawn."""
    sources = list(table3_predictions["source"].unique())
    for source in sources:
        for predictions, by, figure, title in (
            (table3_predictions, "regressor", "popnas_fig4", "Time regressors (POPNAS Fig. 4)"),
            (table56_predictions, "reindex", "popnas_fig5", "NNLS static vs dynamic re-index (POPNAS Fig. 5)"),
        ):
            one_run = (predictions["source"] == source) & (
                predictions["seed"].isna() | (predictions["seed"] == run.seeds[0]))
            figures.predicted_versus_real(predictions[one_run], by, run.figure(f"{figure}_{source}.png"),
                                          f"{title}, {source}")
    return sources


def sections(run: PaperRun) -> list[TableSection]:
    """The ``popnas_regressors`` study's report sections: POPNAS Tables 3-6 on the surrogate's PNAS searches
    and the measured table, with Figs. 4-5."""
    cfg = run.settings.regressors
    tables, table3_predictions, table56_predictions = regressor_tables(run)
    t3, t4, t5, t6 = (tables[name] for name in ("table3", "table4", "table5", "table6"))
    setting = {"steps": cfg.max_blocks, "K": run.settings.searches.K,
               "surrogate seeds": run.seeds,
               "xgboost grid": cfg.xgboost_grid or "POPNAS full grid"}
    sources = _regressor_figures(run, table3_predictions, table56_predictions)
    table3 = aggregate_sources(t3, ["regressor", "evaluation", "blocks"], "mean_relative_error")
    note = _regressor_note(table3, run.measured_provenance)
    return [
        TableSection("popnas_table3", "Time regressors: average relative error (POPNAS Table 3)",
                     table3,
                     paper_numbers.popnas_table3(), ("regressor", "evaluation", "blocks"), note, setting,
                     tuple(f"popnas_fig4_{s}.png" for s in sources)),
        TableSection("popnas_table4", "Ridge and NNLS with re-index and input pruning (POPNAS Table 4)",
                     aggregate_sources(t4, ["regressor", "variant", "evaluation", "blocks"],
                                        "mean_relative_error"),
                     paper_numbers.popnas_table4(), ("regressor", "variant", "evaluation", "blocks"),
                     note, setting),
        TableSection("popnas_table5", "NNLS static versus dynamic re-index (POPNAS Table 5)",
                     aggregate_sources(t5, ["reindex", "statistic"], "relative_error"),
                     paper_numbers.popnas_table5(), ("reindex", "statistic"),
                     note + " Static is the cost order without inputs; dynamic re-indexes by measured "
                     "one-block times.", setting,
                     tuple(f"popnas_fig5_{s}.png" for s in sources)),
        TableSection("popnas_table6", "NNLS static versus dynamic re-index per step (POPNAS Table 6)",
                     aggregate_sources(t6, ["reindex", "evaluation", "blocks"], "mean_relative_error"),
                     None, (), note + " The paper's Table 6 values are not legible in our copy of the "
                     "paper, so no paper column is shown.", setting),
    ]


def _regressor_note(table3: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """The notes of Tables 3-6: what the rows are, and what the measured ones show."""
    return ("Regressors are fitted on the rows measured before step b and predict the cells trained at "
            "step b; 'blocks' is b. 'surrogate' rows are the mean (and std) over the seeds of PNAS runs on "
            "the noisy-Rastrigin surrogate, whose time model is fitted to a measured table ("
            + _surrogate_time_source() + "); 'measured' rows use the embedded table's real training "
            "times (digits, CPU, 5 epochs), a far smaller and faster child network than the paper's "
            "(CIFAR-10 batch, V100, 20 epochs). cost_nnls (not in the paper) is NNLS on the child network's "
            "analytic parameter count and FLOPs (harness.cost_features), counted for the recorded network "
            "(digits, F=8, N=1). " + _measured_regressor_note(table3, provenance))


def _surrogate_time_source() -> str:
    """Which table the surrogate's time constants were fitted to, and how well the fit holds."""
    from backends.surrogate import TIME_CONSTANTS

    source = TIME_CONSTANTS.source
    return (f"{source.get('table')}, clock {source.get('clock')}, {source.get('rows')} cells: the fit's mean "
            f"relative error on them is {source.get('mean_relative_error', float('nan')):.2f}, its block-count "
            f"growth {TIME_CONSTANTS.growth:+.3f} per block")


def _measured_regressor_note(table3: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """What the measured rows of Table 3 show, in words computed from them and the table's provenance."""
    proper = table3[(table3["source"] == "measured") & (table3["evaluation"] == "proper")]
    if proper.empty:
        return "No measured table was available, so there are no 'measured' rows."
    errors = proper.pivot_table(index="blocks", columns="regressor", values="mean_relative_error")
    clock = provenance.get("clock", "wall")
    text = [f"The measured table's train_time is {clock} time"
            + (" (wall-clock on a shared machine, so it includes the machine's load)" if clock == "wall" else "")
            + "."]
    later = [int(b) for b in errors.index if b >= 3]
    if "block_sum" in errors.columns and later:
        verdicts = []
        for regressor, label in (("ridge", "Ridge"), ("nnls", "NNLS")):
            if regressor in errors.columns:
                wins = [b for b in later if errors.loc[b, regressor] < errors.loc[b, "block_sum"]]
                verdicts.append(f"{label} beats block sum " + ("at every step from B=3" if wins == later else
                                                              f"at B={wins}" if wins else "at no step from B=3"))
        text.append("; ".join(verdicts) + " (proper errors at B=" + str(later) + ": block sum "
                    + ", ".join(f"{errors.loc[b, 'block_sum']:.3f}" for b in later) + "; Ridge "
                    + ", ".join(f"{errors.loc[b, 'ridge']:.3f}" for b in later) + "; NNLS "
                    + ", ".join(f"{errors.loc[b, 'nnls']:.3f}" for b in later) + ").")
    if COST_REGRESSOR in errors.columns and "nnls" in errors.columns:
        text.append("NNLS on the cost features (cost_nnls) against NNLS on the cell encoding, proper errors at B="
                    + str([int(b) for b in errors.index]) + ": " + ", ".join(
                        f"{errors.loc[b, COST_REGRESSOR]:.3f} vs {errors.loc[b, 'nnls']:.3f}" for b in errors.index)
                    + ".")
    if NOISE_FLOOR in errors.columns and (errors[NOISE_FLOOR] > 0).all():
        best = errors.drop(columns=[NOISE_FLOOR, "step drift"], errors="ignore").min(axis=1)
        ratio = best / errors[NOISE_FLOOR]
        share = ("measurement noise is most of the remaining error" if ratio.max() < 2 else
                 "the time models' own error exceeds the measurement noise" if ratio.min() >= 2 else
                 "measurement noise is a large part of the remaining error, but not all of it")
        text.append("'noise floor' is the mean error a perfect time model makes on one measurement, from the "
                    "drift monitor's repeated reference cells; 'step drift' the change of the machine's speed "
                    "between steps. The best time model's error (block sum included) is "
                    + ", ".join(f"{r:.1f}x" for r in ratio) + " the noise floor at B="
                    + str([int(b) for b in ratio.index]) + ": " + share + ".")
    elif NOISE_FLOOR in errors.columns:
        text.append("The drift monitor's repeated reference cells agreed exactly, so the noise floor is 0.")
    else:
        text.append("This table was recorded without a drift monitor, so its measurement noise is unknown.")
    return " ".join(text)
