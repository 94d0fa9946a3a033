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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, clone

from harness.encodings import PAPER_VARIANTS, EncodingConfig
from harness.regressors import make_time_regressor, relative_error
from harness.space import CellSpace

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
    """Kendall's tau-b, NaN for fewer than two pairs or constant values (no warning)."""
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
