"""The main job: run every study at the configured scale and write tables, figures and a report.

``run_paper(output_dir, studies, settings)`` is what ``popnas-harness
experiment=paper`` calls; a notebook can call it too, or call the study
functions directly. Searches run through resumable output folders under
``output_dir/searches``, so a killed main job continues where it stopped.

Backends: the noisy-Rastrigin surrogate everywhere, and the embedded
measured table (real training on digits, recorded by
``python -m ablations.record_measured_table``) wherever a study needs real
training times; a study whose data is missing is reported as skipped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

import backends
from backends.base import check_seed
from backends.table import EMBEDDED_TABLE, load_results_table
from ablations import figures, paper_numbers
from ablations.popnas_time_regressors import (
    COST_REGRESSOR, NOISE_FLOOR, noise_floor_rows, popnas_table3, popnas_table4, popnas_table5_and_6,
)
from ablations.report import TableSection, markdown_table, write_report
from ablations.search_comparisons import (
    pnas_fig4,
    popnas_fronts,
    popnas_table7,
    popnas_table8,
    popnas_time_limit,
    speed_up_explanation,
)
from ablations.space_counts import space_counts
from ablations.surrogate_calibration import surrogate_calibration
from harness.cost_features import training_network
from harness.provenance import environment
from harness.search import PNAS, POPNAS, POPNAS_V1, RandomSearch, RegularizedEvolution, SearchResult
from harness.store import ResultsStore
from harness.space import CellSpace
from harness.store import atomic_write_frame

log = logging.getLogger(__name__)

#: ``measured_table`` value for "no measured table": the studies use the surrogate only.
NO_MEASURED_TABLE = "none"

#: How the settings' keys are named in messages: as the main job's configuration spells them.
SETTINGS_KEY = "experiment.settings"


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse bad main-job settings before any study runs; the message names the key.

    The one place the main job's settings are checked up front (a study's
    own options are checked by the study): ``seed`` and every entry of
    ``seeds`` non-negative integers, ``seeds`` not empty, ``measured_table``
    null (the embedded table), ``"none"`` or an existing file or folder, and
    ``surrogate`` options a surrogate backend accepts (numbers given as
    numbers, not booleans).
    """
    check_seed(settings.get("seed", 0), "seed")
    seeds = settings.get("seeds", [0])
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__") or len(seeds) == 0:
        raise ValueError(f"{SETTINGS_KEY}.seeds must be a non-empty list of seeds, got {seeds!r}")
    for i, seed in enumerate(seeds):
        check_seed(seed, f"{SETTINGS_KEY}.seeds[{i}]")
    table = settings.get("measured_table")
    if table is not None and table != NO_MEASURED_TABLE and not Path(table).exists():
        raise FileNotFoundError(
            f"{SETTINGS_KEY}.measured_table={table!r} does not exist (relative paths are from "
            f"{Path.cwd()}); give an existing table, null for the embedded one or {NO_MEASURED_TABLE!r} "
            "for none")
    surrogate = dict(settings.get("surrogate") or {})
    for key, value in surrogate.items():
        if isinstance(value, bool):
            raise ValueError(f"{SETTINGS_KEY}.surrogate.{key} must be a number, got {value!r}")
    try:
        backends.make("surrogate", **surrogate)
    except (TypeError, ValueError) as err:
        # the backend's messages start with the option's name ("tau must be a real number in (0, 1] ...")
        named = any(str(err).startswith(f"{key} ") for key in surrogate)
        raise ValueError(f"{SETTINGS_KEY}.surrogate{'.' if named else ': '}{err}") from None


@dataclass
class PaperRun:
    """One main-job run: its folder, settings, and the searches several studies share."""

    output_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A setting, or ``default``."""
        return self.settings.get(key, default)

    @property
    def seeds(self) -> list[int]:
        """Seeds of the surrogate searches (results are reported as mean and spread over them)."""
        return list(self.get("seeds", [0]))

    def surrogate(self, space: CellSpace):
        """The surrogate backend of ``space`` with the configured options.

        Wrapped by ``backends.record``, so every evaluation a study makes
        through it is also appended to the run's ``evaluations/`` table.
        """
        return backends.record(backends.make("surrogate", space=space, **self.get("surrogate", {})),
                               self.output_dir / "evaluations")

    def search(self, strategy: str, max_blocks: int, K: int, seed: int, time_limit: float | None = None,
               predictor: dict[str, Any] | None = None) -> pd.DataFrame:
        """``trained`` table of a search on the surrogate (resumable, shared by the studies)."""
        return self.search_result(strategy, max_blocks, K, seed, time_limit, predictor).trained

    def search_result(self, strategy: str, max_blocks: int, K: int, seed: int, time_limit: float | None = None,
                      predictor: dict[str, Any] | None = None) -> SearchResult:
        """A search on the surrogate, run (or resumed) in ``searches/``; every table of it.

        PNAS and POPNAS use the configured predictor; ``popnas_v1`` is
        ``POPNAS.v1`` (the published code's front, integer time features,
        the LSTM) with the ``popnas_v1`` setting's options; ``random`` and
        ``evolution`` are PNAS Fig. 4's baselines. ``time_limit`` (POPNAS's
        L, seconds) applies to PNAS too: PNAS with L is POPNAS without a
        front (children predicted slower than L dropped, then top K).
        ``predictor`` (``{"predictor": ..., "predictor_options": ...}``)
        replaces the configured one for PNAS and POPNAS; its searches get
        their own folders.
        """
        space = CellSpace.pnas(max_blocks=max_blocks)
        backend = self.surrogate(space)
        limit = "" if time_limit is None else f"-L{time_limit:.6g}"
        own = "" if predictor is None else "-" + predictor.get("predictor", "mlp-ensemble")
        folder = self.output_dir / "searches" / f"{strategy}-B{max_blocks}-K{K}-seed{seed}{limit}{own}"
        predictor = self.get("predictor", {}) if predictor is None else predictor
        if time_limit is not None and strategy not in ("pnas", "popnas", "popnas_v1"):
            raise ValueError(f"a time limit applies to pnas, popnas and popnas_v1, not {strategy!r}")
        common = {"K": K, "seed": seed}
        if strategy == "pnas" and time_limit is None:
            search = PNAS(space, backend, **common, **predictor)
        elif strategy in ("pnas", "popnas"):
            search = POPNAS(space, backend, **common, time_limit=time_limit, pareto=strategy == "popnas",
                            **predictor)
        elif strategy == "popnas_v1":
            search = POPNAS.v1(space, backend, **common, time_limit=time_limit, **self.get("popnas_v1", {}))
        elif strategy == "random":
            search = RandomSearch(space, backend, **common)
        else:
            search = RegularizedEvolution(space, backend, **common, **self.get("evolution", {}))
        return search.run(folder)

    @cached_property
    def measured(self) -> pd.DataFrame | None:
        """The measured table (``measured_table`` setting, default the embedded one), or ``None``
        (``"none"``, or no embedded table recorded yet)."""
        if self.get("measured_table") == NO_MEASURED_TABLE:
            return None
        path = self.get("measured_table") or EMBEDDED_TABLE
        try:
            return load_results_table(path, CellSpace.pnas())
        except FileNotFoundError as missing:
            log.warning("no measured table, its studies use the surrogate only: %s", missing)
            return None

    @cached_property
    def measured_provenance(self) -> dict[str, Any]:
        """The measured table's JSON sidecar (its recording's provenance), or ``{}``."""
        sidecar = Path(self.get("measured_table") or EMBEDDED_TABLE).with_suffix(".json")
        return json.loads(sidecar.read_text()) if self.measured is not None and sidecar.exists() else {}

    def measured_drift(self, strategy: str) -> pd.DataFrame | None:
        """Per-step drift summary of the recorded search ``strategy`` (its ``train_time`` clock), or
        ``None`` when the table was recorded without a drift monitor."""
        per_step = self.measured_provenance.get("drift", {}).get(strategy, {}).get("train_time", {})
        return pd.DataFrame(per_step["per_step"]) if per_step.get("per_step") else None

    def measured_run(self, strategy: str) -> pd.DataFrame | None:
        """The recorded search ``strategy`` of the measured table (``step`` and ``strategy`` columns)."""
        if self.measured is None or "strategy" not in self.measured.columns:
            return None
        rows = self.measured[self.measured["strategy"] == strategy].reset_index(drop=True)
        return rows if len(rows) else None

    def measured_candidates(self, strategy: str) -> pd.DataFrame | None:
        """The per-step ``candidates`` summary of a recorded search, if the recording kept one.

        ``ablations.record_measured_table`` writes them beside the table
        (``<table>.candidates.parquet``); runs recorded before it did have none.
        """
        path = Path(self.get("measured_table") or EMBEDDED_TABLE).with_suffix(".candidates.parquet")
        if self.measured is None or not path.exists():
            return None
        rows = pd.read_parquet(path)
        rows = rows[rows["strategy"] == strategy].reset_index(drop=True)
        return rows if len(rows) else None

    def figure(self, name: str) -> Path:
        """Where figure ``name`` goes."""
        return self.output_dir / "figures" / name


def _mean_over_seeds(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """``value`` as mean and sample std over the ``seed`` column, per ``keys``."""
    return (frame.groupby(keys, sort=False)[value]
            .agg(**{value: "mean", f"{value}_std": "std", "seeds": "count"}).reset_index())


# ---------------------------------------------------------------------- studies
def _space_counts(run: PaperRun) -> list[TableSection]:
    max_blocks = run.get("max_blocks", 5)
    return [TableSection(
        id="space_counts", title="PNAS search-space counts (PNAS section 3.1)",
        ours=space_counts(max_blocks=max_blocks), paper=paper_numbers.space_counts(),
        join_on=("quantity", "b"), settings={"max_blocks": max_blocks, "lookback": 2},
        notes=("Counted by enumerating block tables and running `expand`. The paper rounds |B_1:5| "
               "to 5.6e14; the unique two-block count (136 x 300) is ours alone."),
    )]


def _surrogate_calibration(run: PaperRun) -> list[TableSection]:
    options = {k: v for k, v in run.get("surrogate", {}).items() if k != "tau"}
    cells = run.get("calibration_cells_per_block_count", 2000)
    return [TableSection(
        id="surrogate_calibration",
        title="Noisy-Rastrigin surrogate: configured versus measured Kendall tau-b",
        ours=surrogate_calibration(cells_per_block_count=cells, seed=run.get("seed", 0) + 1, **options),
        settings={"cells_per_block_count": cells, **options},
        notes=("Measured on fresh uniform random cells of every block count at full fidelity; the "
               "Gaussian-copula noise makes the population tau equal the target exactly, so the "
               "measured value differs only by sampling error."),
    )]


def _regressor_sources(run: PaperRun) -> list[tuple[str, int | None, pd.DataFrame]]:
    """(source, seed, PNAS trained table) pairs the time-regressor studies run on.

    The surrogate's are the first ``regressors.max_blocks`` steps (the paper
    ablates with B = 4) of the PNAS searches the other studies share.
    """
    cfg, searches = run.get("regressors", {}), run.get("searches", {})
    steps = cfg.get("max_blocks", 4)
    sources = []
    for seed in run.seeds:
        trained = run.search("pnas", searches.get("max_blocks", 5), searches.get("K", 256), seed)
        sources.append(("surrogate", seed, trained[trained["step"] <= steps]))
    measured = run.measured_run("pnas")
    if measured is not None:
        sources.append(("measured", None, measured[measured["step"] <= steps]))
    return sources


def _aggregate_sources(frames: list[pd.DataFrame], keys: list[str], value: str) -> pd.DataFrame:
    """Per source: mean and std over seeds (the measured table has one run, so no std)."""
    frame = pd.concat(frames, ignore_index=True)
    return _mean_over_seeds(frame, ["source", *keys], value)


#: The child network the cost-feature regressor of Table 3 counts for the surrogate's rows: the one the
#: embedded measured table was recorded with (digits, F = 8, N = 1, PNAS's add and reduction), to whose
#: times the surrogate's time model is fitted (backends.time_fit). The measured rows use their own
#: table's recorded network (harness.cost_features.training_network).
SURROGATE_COST_NETWORK: dict[str, Any] = {"combiner": "add", "reduction": "pnas", "filters": 8,
                                          "cells_per_stage": 1, "image_size": 8, "in_channels": 1,
                                          "num_classes": 10}


def _cost_network(source: str, trained: pd.DataFrame) -> dict[str, Any]:
    """The network Table 3's cost features count for one source's cells."""
    if source != "measured" or "backend_options" not in trained.columns:
        return SURROGATE_COST_NETWORK
    return training_network(json.loads(trained["backend_options"].iloc[0]))


def _popnas_regressors(run: PaperRun) -> list[TableSection]:
    cfg = run.get("regressors", {})
    space = CellSpace.pnas(max_blocks=run.get("searches", {}).get("max_blocks", 5))
    xgboost = {"param_grid": cfg["xgboost_grid"]} if cfg.get("xgboost_grid") else {}
    t3, t4, t5, t6, p3, p56 = [], [], [], [], [], []
    for source, seed, trained in _regressor_sources(run):
        tag = {"source": source, "seed": seed}
        table3, predictions3 = popnas_table3(trained, space, xgboost, _cost_network(source, trained))
        t3.append(table3.assign(**tag))
        t4.append(popnas_table4(trained, space).assign(**tag))
        table5, table6, predictions56 = popnas_table5_and_6(trained, space)
        t5.append(table5.assign(**tag))
        t6.append(table6.assign(**tag))
        p3.append(predictions3.assign(**tag))
        p56.append(predictions56.assign(**tag))
    steps = cfg.get("max_blocks", 4)
    drift = run.measured_drift("pnas")
    if drift is not None:
        # measurement error beside the regressors' (harness.search.drift): the 'measured' rows only
        floor = noise_floor_rows(drift, steps).assign(source="measured", seed=None)
        t3.append(floor)
        t6.append(floor[floor["regressor"] == NOISE_FLOOR].rename(columns={"regressor": "reindex"}))
        t5.append(pd.DataFrame({"reindex": [NOISE_FLOOR], "statistic": ["mean"], "source": ["measured"],
                                "seed": [None], "relative_error": [
                                    floor.query("regressor == @NOISE_FLOOR and evaluation == 'progressive'")
                                    ["mean_relative_error"].iloc[-1]]}))
    setting = {"steps": steps, "K": run.get("searches", {}).get("K", 256),
               "surrogate seeds": run.seeds,
               "xgboost grid": cfg.get("xgboost_grid") or "POPNAS full grid"}
    # figures show one run per source: the measured table, and the surrogate's first seed
    table3_predictions, table56_predictions = pd.concat(p3), pd.concat(p56)
    sources = table3_predictions["source"].unique()
    for source in sources:
        for predictions, by, figure, title in (
            (table3_predictions, "regressor", "popnas_fig4", "Time regressors (POPNAS Fig. 4)"),
            (table56_predictions, "reindex", "popnas_fig5", "NNLS static vs dynamic re-index (POPNAS Fig. 5)"),
        ):
            one_run = (predictions["source"] == source) & (
                predictions["seed"].isna() | (predictions["seed"] == run.seeds[0]))
            figures.predicted_versus_real(predictions[one_run], by, run.figure(f"{figure}_{source}.png"),
                                          f"{title}, {source}")
    table3 = _aggregate_sources(t3, ["regressor", "evaluation", "blocks"], "mean_relative_error")
    note = ("Regressors are fitted on the rows measured before step b and predict the cells trained at "
            "step b; 'blocks' is b. 'surrogate' rows are the mean (and std) over the seeds of PNAS runs on "
            "the noisy-Rastrigin surrogate, whose time model is fitted to a measured table ("
            + _surrogate_time_source() + "); 'measured' rows use the embedded table's real training "
            "times (digits, CPU, 5 epochs), a far smaller and faster child network than the paper's "
            "(CIFAR-10 batch, V100, 20 epochs). cost_nnls (not in the paper) is NNLS on the child network's "
            "analytic parameter count and FLOPs (harness.cost_features), counted for the recorded network "
            "(digits, F=8, N=1). " + _measured_regressor_note(table3, run.measured_provenance))
    return [
        TableSection("popnas_table3", "Time regressors: average relative error (POPNAS Table 3)",
                     table3,
                     paper_numbers.popnas_table3(), ("regressor", "evaluation", "blocks"), note, setting,
                     tuple(f"popnas_fig4_{s}.png" for s in sources)),
        TableSection("popnas_table4", "Ridge and NNLS with re-index and input pruning (POPNAS Table 4)",
                     _aggregate_sources(t4, ["regressor", "variant", "evaluation", "blocks"],
                                        "mean_relative_error"),
                     paper_numbers.popnas_table4(), ("regressor", "variant", "evaluation", "blocks"),
                     note, setting),
        TableSection("popnas_table5", "NNLS static versus dynamic re-index (POPNAS Table 5)",
                     _aggregate_sources(t5, ["reindex", "statistic"], "relative_error"),
                     paper_numbers.popnas_table5(), ("reindex", "statistic"),
                     note + " Static is the cost order without inputs; dynamic re-indexes by measured "
                     "one-block times.", setting,
                     tuple(f"popnas_fig5_{s}.png" for s in sources)),
        TableSection("popnas_table6", "NNLS static versus dynamic re-index per step (POPNAS Table 6)",
                     _aggregate_sources(t6, ["reindex", "evaluation", "blocks"], "mean_relative_error"),
                     None, (), note + " The paper's Table 6 values are not legible in our copy of the "
                     "paper, so no paper column is shown.", setting),
    ]


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


#: The POPNAS runs of Tables 7-8 by front label: the main job's POPNAS (strict front, the configured
#: predictor) and the v1 preset (``POPNAS.v1``).
POPNAS_RUNS: dict[str, str] = {"strict": "popnas", "v1": "popnas_v1"}


def _predictors_used(run: PaperRun) -> dict[str, str]:
    """The accuracy predictor of each search of Tables 7-8, for the settings line."""
    main = run.get("predictor", {}).get("predictor", "mlp-ensemble")
    v1 = run.get("popnas_v1", {}).get("predictor", POPNAS_V1["predictor"])
    return {"pnas": main, "popnas (strict)": main, "popnas (v1)": v1,
            "measured pnas/popnas": "mlp-ensemble (the recorder's default)",
            "measured popnas_v1": f"{POPNAS_V1['predictor']} (the recorder's POPNAS.v1)"}


def _popnas_searches(run: PaperRun) -> list[TableSection]:
    cfg = run.get("searches", {})
    max_blocks, K = cfg.get("max_blocks", 5), cfg.get("K", 256)
    t7, t8, fronts = [], [], []
    for seed in run.seeds:
        tag = {"source": "surrogate", "seed": seed}
        pnas = run.search_result("pnas", max_blocks, K, seed)
        popnas = {front: run.search_result(strategy, max_blocks, K, seed) for front, strategy in POPNAS_RUNS.items()}
        for front, result in popnas.items():
            t7.append(popnas_table7(result.trained).assign(front=front, **tag))
        t8.append(popnas_table8(pnas.trained, {f: r.trained for f, r in popnas.items()}).assign(**tag))
        fronts.append(popnas_fronts({("pnas", "-"): (pnas.trained, None),
                                     **{("popnas", f): (r.trained, r.candidates) for f, r in popnas.items()}},
                                    K).assign(**tag))
        if seed == run.seeds[0]:
            for front, result in popnas.items():
                predictions = result.predictions
                suffix = "" if front == "strict" else f"_{front}"
                for step in (2, max_blocks):
                    figures.pareto_picks(predictions, step, run.figure(f"popnas_pareto_step{step}{suffix}.png"),
                                         f"POPNAS ({front} front) step {step} on the surrogate (POPNAS Figs. 6-7)")
    measured_pnas = run.measured_run("pnas")
    measured = {front: run.measured_run(strategy) for front, strategy in POPNAS_RUNS.items()}
    measured = {front: trained for front, trained in measured.items() if trained is not None}
    if measured_pnas is not None and measured:
        tag = {"source": "measured", "seed": None}
        # the recorded PNAS run trains exactly K cells from step 2 on: the recording's K
        measured_k = int((measured_pnas["step"] == 2).sum())
        for front, trained in measured.items():
            t7.append(popnas_table7(trained).assign(front=front, **tag))
        t8.append(popnas_table8(measured_pnas, measured).assign(**tag))
        fronts.append(popnas_fronts(
            {("pnas", "-"): (measured_pnas, None),
             **{("popnas", f): (t, run.measured_candidates(POPNAS_RUNS[f])) for f, t in measured.items()}},
            measured_k).assign(**tag))
    setting = {"max_blocks": max_blocks, "K": K, "surrogate seeds": run.seeds, "time_limit": None,
               "predictors": _predictors_used(run)}
    figure_names = tuple(f"popnas_pareto_step{step}{suffix}.png" for suffix in ("", "_v1") for step in (2, max_blocks))
    table8 = _aggregate_sources(t8, ["quantity", "search", "front", "step"], "value")
    front_sizes = _aggregate_sources(fronts, ["search", "front", "step", "quantity"], "value")
    front_note = ("'strict' is the non-dominated front (harness.search.pareto.pareto_front); 'v1' is POPNAS.v1, "
                  "the published code's sweep (children tied in predicted time stay on the front) with the "
                  "children's time features truncated to integers and the LSTM controller. ")
    return [
        TableSection("popnas_table7", "POPNAS: mean accuracy of the top trained cells per step (POPNAS Table 7)",
                     _aggregate_sources(t7, ["front", "top", "blocks"], "mean_accuracy"),
                     paper_numbers.popnas_table7(), ("top", "blocks"),
                     front_note + "Top 'K' is every cell the step trained (the paper's 256); `cells` in "
                     "`popnas_fronts`. Surrogate accuracies live on the surrogate's scale; measured ones are "
                     "digits validation accuracies after 5 epochs (B and K: the measured table's provenance).",
                     setting, figure_names),
        TableSection("popnas_table8", "PNAS versus POPNAS: best cell and search cost (POPNAS Table 8, 4.2)",
                     table8, paper_numbers.popnas_table8(), ("quantity", "search"),
                     front_note + "Times are the backend's: surrogate seconds are its fitted time model's (seconds of "
                     "digits training), measured seconds the embedded table's train_time ("
                     + run.measured_provenance.get("clock", "wall") + " clock) of small children on digits; "
                     "compare ratios, not absolute values, with the paper's GPU hours. The measured runs were recorded at "
                     "different times on a shared machine (the table's JSON provenance: `recordings`, `drift`), so "
                     "their plain time ratios carry the machine's speed drift between recordings; the speed-up 'in "
                     "units of each run's step-1 time' divides each run's time by what its step-1 cells (the same "
                     "cells in every run) took, which cancels it.",
                     setting),
        TableSection("popnas_fronts", "Front size and cells trained per step, PNAS and both POPNAS fronts",
                     front_sizes,
                     notes=(front_note + "Where the speed-ups come from (means over seeds): "
                            + speed_up_explanation(table8, front_sizes) + " The paper reports about 2x less training time "
                            "at B=5 for a last-step mean accuracy of 0.637 against PNAS's 0.770 (13 points, "
                            "-17 %; POPNAS Sec. 4.2). "
                            "'front size' is the front of the children within the time limit; a "
                            "step trains min(K, front size) of it. Measured runs recorded before the recorder "
                            "kept candidate summaries show a front size only where the step trained fewer "
                            "than K cells (then it trained its whole front)."),
                     settings=setting),
    ]


def _popnas_time_limit(run: PaperRun) -> list[TableSection]:
    cfg, searches = run.get("popnas_time_limit", {}), run.get("searches", {})
    max_blocks, K = searches.get("max_blocks", 5), cfg.get("K", searches.get("K", 256))
    quantiles, strategies = cfg.get("quantiles", [0.5, 0.75, 0.9]), cfg.get("searches", ["pnas", "popnas"])
    # the study's own predictor (null: the main job's), for its searches only
    predictor = cfg.get("predictor") or run.get("predictor", {})
    rows = []
    for seed in cfg.get("seeds", run.seeds[:1]):
        pnas = run.search("pnas", max_blocks, K, seed, None, predictor)
        one_block = pnas.loc[(pnas["step"] == 1) & (pnas["blocks"] == 1), "train_time"].to_numpy()
        # L = a quantile of the measured one-block times, times B: a per-block budget for the largest cells
        limits = [(None, None)] + [(q, float(np.quantile(one_block, q) * max_blocks)) for q in quantiles]
        table = popnas_time_limit({(strategy, q, limit): run.search(strategy, max_blocks, K, seed, limit, predictor)
                                   for strategy in strategies for q, limit in limits})
        rows.append(table.assign(seed=seed))
    keys = ["search", "quantile"]
    frame = pd.concat(rows, ignore_index=True)
    values = [c for c in frame.columns if c not in (*keys, "seed")]
    table = frame.groupby(keys, sort=False, dropna=False)[values].mean().reset_index()
    table["seeds"] = frame.groupby(keys, sort=False, dropna=False)["seed"].count().to_numpy()
    figures.time_limit_tradeoff(table, run.figure("popnas_time_limit.png"),
                                "Time limit L: accuracy versus search training time (surrogate)")
    return [TableSection(
        "popnas_time_limit", "The time limit L: search cost versus accuracy, PNAS and POPNAS (surrogate)", table,
        settings={"max_blocks": max_blocks, "K": K, "quantiles": quantiles, "searches": strategies,
                  "seeds": cfg.get("seeds", run.seeds[:1]),
                  "predictors": {s: (run.get("popnas_v1", {}).get("predictor", POPNAS_V1["predictor"])
                                     if s == "popnas_v1" else predictor.get("predictor", "mlp-ensemble"))
                                 for s in strategies}},
        figures=("popnas_time_limit.png",),
        notes=("L = the given quantile of the seed's PNAS step-1 measured one-block times, times B, one limit "
               "for every step as in the paper; children predicted (NNLS, POPNAS's final regressor) slower than "
               "L are dropped before the front. PNAS with L is POPNAS without a front: the limit, then the top "
               "K by predicted accuracy. `quantile` NaN is no limit (the Table 7-8 searches). Values are means "
               "over the seeds."),
    )]


def _pnas_fig4(run: PaperRun) -> list[TableSection]:
    cfg = run.get("searches", {})
    max_blocks, K = cfg.get("max_blocks", 5), cfg.get("K", 256)
    labels = {"pnas": "PNAS", "random": "random search", "evolution": "regularized evolution"}
    curves = pnas_fig4({label: [run.search(strategy, max_blocks, K, seed) for seed in run.seeds]
                        for strategy, label in labels.items()})
    figures.top_m_curves(curves, run.figure("pnas_fig4.png"), "Top-M accuracy vs models trained (PNAS Fig. 4)")
    return [TableSection(
        "pnas_fig4", "Mean accuracy of the top M models vs models trained (PNAS Fig. 4)", curves,
        settings={"max_blocks": max_blocks, "K": K, "trials (seeds)": run.seeds, "backend": "surrogate",
                  "evolution": run.get("evolution", {})},
        figures=("pnas_fig4.png",),
        notes=("The paper reports this as a figure only (PNAS beats random search at every budget). "
               "Mean and std are over trials (search seeds) on the surrogate; the PNAS runs are the "
               "ones Tables 3-8 use."),
    )]


def _thesis_rastrigin(run: PaperRun) -> list[TableSection]:
    from ablations.thesis_rastrigin import thesis_table4_3, thesis_table5_4

    cfg = run.get("rastrigin", {})
    note = ("`mean_top_fraction` is the thesis' stated measure (fraction of grid points better than the "
            "GA's best); `mean_normalised_value` rescales the clean value to [0, 1] over the grid, which "
            "matches the thesis' numbers far better (see `ablations/thesis_rastrigin.py`). "
            "tau = 1 is the thesis' 'original' column.")
    t43 = thesis_table4_3(repetitions=cfg.get("table4_3_repetitions", 1000), seed=run.get("seed", 0),
                          resolution=cfg.get("resolution_3d"), progress=False)
    t54 = thesis_table5_4(repetitions=cfg.get("table5_4_repetitions", 100), seed=run.get("seed", 0),
                          resolution=cfg.get("resolution"), progress=False)
    return [
        TableSection("thesis_table4_3", "GA on noisy 3-d Rastrigin (thesis Table 4.3)", t43,
                     paper_numbers.thesis_table4_3(), ("dims", "generations", "tau"), note,
                     {"repetitions": int(t43["repetitions"].iloc[0]),
                      "resolution": int(t43["resolution"].iloc[0])}),
        TableSection("thesis_table5_4", "GA on noisy 2-, 3-, 4-d Rastrigin (thesis Table 5.4)", t54,
                     paper_numbers.thesis_table5_4(), ("dims", "generations", "tau"), note,
                     {"repetitions": int(t54["repetitions"].iloc[0]),
                      "resolutions": sorted(set(zip(t54["dims"], t54["resolution"])))}),
    ]


def _thesis_kendall_fidelity(run: PaperRun) -> list[TableSection]:
    from ablations.thesis_kendall_fidelity import (
        fidelity_tau_matrix,
        plot_fidelity_heatmap,
        thesis_kendall_fidelity,
    )

    backend = run.surrogate(CellSpace.pnas())
    table = thesis_kendall_fidelity(backend, seed=run.get("seed", 0))
    plot_fidelity_heatmap(fidelity_tau_matrix(backend, seed=run.get("seed", 0)),
                          run.figure("thesis_fidelity_tau.png"))
    return [TableSection(
        "thesis_kendall_fidelity", "Kendall tau-b of reduced versus full training, 800 bootstrap samples",
        table, settings={"backend": "surrogate", "max_epochs": backend.max_epochs},
        figures=("thesis_fidelity_tau.png",),
        notes=("The surrogate's fidelity curve is anchored on the thesis' NAS-Bench-101 figures, so the "
               "match at 36/108 of full fidelity is by construction; the rest of the curve, the rounding "
               "effect and the bootstrap errors are measured. The thesis' figures:\n\n"
               + markdown_table(paper_numbers.thesis_kendall_fidelity())),
    )]


def _pnas_table1(run: PaperRun) -> list[TableSection]:
    from ablations.pnas_table1 import pnas_table1

    cfg = dict(run.get("pnas_table1", {}))
    space = CellSpace.pnas(max_blocks=cfg.pop("max_blocks", 5))
    table = pnas_table1(run.surrogate(space), max_blocks=space.max_blocks, seed=run.get("seed", 0), **cfg)
    return [TableSection(
        "pnas_table1", "Predictors' Spearman correlation by PNAS Algorithm 2 (PNAS Table 1)", table,
        paper_numbers.pnas_table1(), ("predictor", "fit_blocks", "evaluated_on", "eval_blocks"),
        ("On the surrogate. rho-hat ('train') is measured on the K training cells, rho-tilde ('next') on "
         "R unseen random cells one block larger; mean and std over trials, CI by a two-level bootstrap "
         "(trials, then cells). The main job runs fewer trials, a smaller R and shorter predictor "
         "training than the paper (T=20, R=10,000); `ablations.pnas_table1.PAPER_SCALE` is the "
         "paper's. The output bias starts at the logit of the mean training accuracy instead of "
         "PNAS's 1.8 (0.86, CIFAR-10's mean), which the surrogate's accuracies are far from."),
        {"max_blocks": space.max_blocks, **cfg},
    )]


def _nb201(run: PaperRun) -> list[TableSection]:
    from ablations.nb201_studies import nb201_predictor_ranking, nb201_time_regressors

    cfg = run.get("nb201", {})
    sections = []
    for table_id, title, study, options in (
        ("nb201_time_regressors", "Time (latency) regressors on NAS-Bench-201, smaller to larger cells",
         nb201_time_regressors, cfg.get("time_regressors", {})),
        ("nb201_predictor_ranking", "Accuracy predictors' rank correlation on NAS-Bench-201",
         nb201_predictor_ranking, cfg.get("predictor_ranking", {})),
    ):
        # no fallback: the packaged table is always there, and a data_dir the user names must exist
        table = study(data_dir=cfg.get("data_dir"), seed=run.get("seed", 0), **options)
        source = f"`{cfg['data_dir']}`" if cfg.get("data_dir") else "the packaged copy (`backends/data/nb201`)"
        notes = (f"NAS-Bench-201 (NATS-Bench accuracies, HELP latencies) from {source}; the count of "
                 "non-`none` operators plays the block count. See `ablations/nb201_studies.py`.")
        sections.append(TableSection(table_id, title, table, notes=notes, settings=dict(options)))
    sections.append(_nb201_train_sizes(run, cfg))
    return sections


def _nb201_train_sizes(run: PaperRun, cfg: dict[str, Any]) -> TableSection:
    """The train-size sweep of both NB201 model kinds: a table and one figure per target."""
    from ablations.nb201_train_sizes import nb201_train_sizes

    options = dict(cfg.get("train_sizes", {}))
    targets = options.pop("targets", ["cifar10", "lat_gold_6226"])
    sweep = pd.concat([nb201_train_sizes(data_dir=cfg.get("data_dir"), target=target, seed=run.get("seed", 0),
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


def _fidelity_sections(run: PaperRun, landscape: str, cfg: dict[str, Any], predictor: Mapping[str, Any],
                       backend_options: Mapping[str, Any], where: str) -> list[TableSection]:
    """The fidelity_dial tables of one landscape: the summary and the methods' order per tau."""
    from ablations.fidelity_dial import fidelity_runs, method_order_agreement, plot_fidelity_dial, summarise

    suffix = "" if landscape == "surrogate" else f"_{landscape}"
    sample = {"rank_sample": cfg["rank_sample"]} if "rank_sample" in cfg else {}  # ranks are exact on NB201
    runs = fidelity_runs(cfg["methods"], cfg["taus"], cfg["seeds"], landscape=landscape,
                         max_blocks=cfg.get("max_blocks"), K=cfg["K"], **sample,
                         predictor=predictor.get("predictor"),
                         predictor_options=predictor.get("predictor_options", {}),
                         backend_options=backend_options)
    summary = summarise(runs)
    figure = f"fidelity_dial{suffix}.png"
    plot_fidelity_dial(summary, run.figure(figure))
    settings = {**cfg, "seeds": sorted(runs["seed"].unique().tolist()), "predictor": predictor.get("predictor"),
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


def _fidelity_dial(run: PaperRun) -> list[TableSection]:
    from ablations.fidelity_dial import METHODS, TAUS

    # reduced scale: the full study (B=5, K=256, 20 seeds) is the fidelity_dial sweep (README)
    cfg = {"max_blocks": 3, "K": 32, "rank_sample": 20_000, "taus": list(TAUS), "methods": list(METHODS),
           "seeds": run.seeds, **run.get("fidelity_dial", {})}
    predictor = run.get("predictor", {})
    predictor = {"predictor": predictor.get("predictor", "mlp-ensemble"),
                 "predictor_options": predictor.get("predictor_options", {})}
    return _fidelity_sections(run, "surrogate", cfg, predictor,
                              {k: v for k, v in run.get("surrogate", {}).items() if k != "tau"}, "")


def _fidelity_dial_nb201(run: PaperRun) -> list[TableSection]:
    from ablations.fidelity_dial import METHODS, TAUS

    # reduced scale: the full study (20 seeds) is the fidelity_dial sweep on the nb201 landscape (README)
    cfg = {"K": 32, "taus": list(TAUS), "methods": list(METHODS), "seeds": list(range(10)),
           **run.get("fidelity_dial_nb201", {})}
    cfg["seeds"] = list(range(cfg["seeds"])) if isinstance(cfg["seeds"], int) else list(cfg["seeds"])
    options = {key: cfg.pop(key) for key in ("dataset", "cost") if key in cfg}
    options["data_dir"] = run.get("nb201", {}).get("data_dir")
    predictor = {"predictor": cfg.pop("predictor", "ridge-ensemble"), "predictor_options": {}}
    return _fidelity_sections(run, "nb201", cfg, predictor, options, " (NAS-Bench-201)")


def _nb201_searches(run: PaperRun) -> list[TableSection]:
    from ablations.nb201_searches import anytime_at_steps, nb201_pnas_vs_popnas

    cfg = run.get("nb201", {})
    options = dict(cfg.get("searches", {}))
    study = nb201_pnas_vs_popnas(data_dir=cfg.get("data_dir"), **options)
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
    source = f"`{cfg['data_dir']}`" if cfg.get("data_dir") else "the packaged copy"
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


#: Study id -> builder of its report sections, in report order.
STUDIES: dict[str, Callable[[PaperRun], list[TableSection]]] = {
    "space_counts": _space_counts,
    "surrogate_calibration": _surrogate_calibration,
    "popnas_regressors": _popnas_regressors,
    "popnas_searches": _popnas_searches,
    "popnas_time_limit": _popnas_time_limit,
    "pnas_table1": _pnas_table1,
    "pnas_fig4": _pnas_fig4,
    "thesis_rastrigin": _thesis_rastrigin,
    "thesis_kendall_fidelity": _thesis_kendall_fidelity,
    "nb201": _nb201,
    "nb201_pnas_vs_popnas": _nb201_searches,
    "fidelity_dial": _fidelity_dial,
    "fidelity_dial_nb201": _fidelity_dial_nb201,
}


def run_paper(output_dir: str | Path, studies: list[str] | None = None,
              settings: dict[str, Any] | None = None) -> list[TableSection]:
    """Run ``studies`` (default: all) and write ``tables/``, ``figures/`` and ``report.md``.

    Every setting is checked first (:func:`check_settings`). The run's
    ``evaluations/`` table is compacted at the end, so it reads as one file.
    """
    chosen = list(STUDIES) if studies is None else list(studies)
    unknown = [s for s in chosen if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {list(STUDIES)}")
    check_settings(dict(settings or {}))
    run = PaperRun(Path(output_dir), dict(settings or {}))
    sections = []
    for number, study in enumerate(chosen, start=1):
        start = time.perf_counter()
        log.info("[%d/%d] study %s: running", number, len(chosen), study)
        sections += STUDIES[study](run)
        log.info("[%d/%d] study %s: done in %.1f s", number, len(chosen), study, time.perf_counter() - start)
    env = environment()
    header = "\n".join([
        "# popnas-harness report",
        "",
        "Our values are computed by this run; the papers' values stand beside them for comparison only "
        "(the `paper` column, never written into `tables/`). Differences in backend (surrogate versus "
        "real training), scale and settings are stated with each table.",
        "",
        "Run: " + ", ".join(f"{k}={v}" for k, v in env.items()),
        "",
    ])
    write_report(run.output_dir, sections, header)
    ResultsStore(run.output_dir / "evaluations").compact()
    return sections
