"""What a ``popnas-harness`` job runs, and the objects it builds from its configuration.

``run_experiment(config, output_dir)`` takes a job's resolved configuration
as plain data (``harness.app.sweep.job_config``; see ``harness.app.config`` for the
schema), so notebooks and tests call it without Hydra. The experiments
(:data:`EXPERIMENTS`):

``paper``
    the main job, ``harness.app.paper.run_paper``.
``search``
    one strategy on one backend with one seed; the search checkpoints in
    ``search/`` and its tables go to ``tables/``: ``trained.csv``,
    ``summary.csv`` (per step: cells trained so far, best accuracy so far,
    training time so far) and ``top_accuracy.csv`` (POPNAS Table 7's
    layout).
``fidelity_dial``
    one search (``experiment.method``) with one seed on the surrogate or NAS-Bench-201
    (``experiment.landscape``) at one evaluator fidelity (``experiment.tau``):
    ``tables/fidelity.csv``, the run's row of ``ablations.fidelity_dial.metrics(landscape)``
    (``clean_rank`` on NAS-Bench-201 only); the sweep aggregate adds the methods' order agreement
    and the quality-versus-tau figure.
``table_ablation``
    the time-regressor and accuracy-predictor ablations on a user's own
    results table (``table.path``, ``table.space``), by
    ``ablations.table_ablation.run_table_ablation``.
``regressor_ablation``
    one time regressor on one encoding, fitted on the cells trained before
    each step of a search and scored on the cells of that step (POPNAS 4.1):
    ``tables/relative_error.csv`` (proper and progressive mean relative
    error per step) and ``tables/predictions.csv``. The search itself is
    shared: jobs with the same backend, search and seed use one copy in
    ``searches/`` beside the job folders, run by whichever job comes first
    while the others wait for it.

Executors (``executor`` group, training backend only) are built and closed by
:func:`backends.executors.open_executor`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from backends.executors import open_executor
from harness.app.config import (
    BackendConfig,
    HarnessConfig,
    PredictorConfig,
    SearchConfig,
    SpaceConfig,
    plain,
    structured,
)
from harness.app.sweep import config_hash, locked
from harness.store import atomic_write_frame
from harness.validation import check_seed

log = logging.getLogger(__name__)

#: Backends whose cells the searches can search (NAS-Bench-201 has its own space).
SEARCHABLE_BACKENDS: tuple[str, ...] = ("surrogate", "training", "table")


@dataclass(frozen=True)
class ResultTable:
    """A table each job writes to ``tables/<name>.csv``, as the sweep aggregate reads it.

    ``keys`` identify a row within a job; ``values`` are the columns averaged over seeds (a job's
    table may lack some, when the experiment measures them only in some settings).
    """

    name: str
    keys: tuple[str, ...]
    values: tuple[str, ...]


@dataclass(frozen=True)
class Experiment:
    """An experiment's runner ``run(config, output_dir)``, the result tables it writes, and what the
    sweep aggregate does after averaging them (``summarise(sweep_dir, tables)``), if anything."""

    run: Callable[[HarnessConfig, Path], None]
    results: tuple[ResultTable, ...] = ()
    summarise: Callable[[Path, Mapping[str, pd.DataFrame]], None] | None = None


# ---------------------------------------------------------------------------- builders
def _given(options: Any, *leave_out: str) -> dict[str, Any]:
    """A schema's fields without the labels ``name`` and ``kind``, the keys ``leave_out`` and null
    values (null = the component's default)."""
    return {k: v for k, v in plain(options).items() if v is not None and k not in ("name", "kind", *leave_out)}


def build_space(space: SpaceConfig):
    """The ``CellSpace`` of a ``SpaceConfig``."""
    from harness.evaluator import resolve_space

    return resolve_space(space.name, space.max_blocks, space.lookback)


def build_backend(backend: BackendConfig, space, **executor_options: Any):
    """The backend of a ``backend`` config in ``space``; ``executor_options`` go to the training backend."""
    import backends

    if backend.name not in SEARCHABLE_BACKENDS:
        raise ValueError(f"backend {backend.name!r} cannot serve the searches, which run in the "
                         f"PNAS/POPNAS cell space; choose one of {SEARCHABLE_BACKENDS}")
    return backends.make(backend.name, space=space, **_given(backend), **executor_options)


def build_search(search: SearchConfig, predictor: PredictorConfig | None, space, backend, seed: int):
    """The strategy of a ``search`` config (with its ``predictor`` for PNAS and POPNAS)."""
    from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution

    strategies = {cls.name: cls for cls in (PNAS, POPNAS, RandomSearch, RegularizedEvolution)}
    # presets: an option of the search group that configures a strategy (conf/search/<preset>.yaml)
    strategies["popnas_v1"] = POPNAS
    name = search.name
    if name not in strategies:
        raise ValueError(f"unknown search {name!r}; choose one of {sorted(strategies)}")
    options = _given(search, "time_regressor", "time_encoding")
    if issubclass(strategies[name], PNAS):
        if predictor is None:
            raise ValueError(f"search {name!r} needs a predictor (the predictor group)")
        options.update(predictor=predictor.name, predictor_options=dict(predictor.options))
    if strategies[name] is POPNAS:
        options.update(_popnas_time_regressor(search, space))
    return strategies[name](space, backend, seed=seed, **options)


def _popnas_time_regressor(search: SearchConfig, space) -> dict[str, Any]:
    """POPNAS's ``time_regressor`` argument: the named regressor and encoding, or none (its default)."""
    regressor, encoding = getattr(search, "time_regressor", None), getattr(search, "time_encoding", None)
    if regressor is None and encoding is None:
        return {}
    if regressor is None or encoding is None:
        raise ValueError("search.time_regressor and search.time_encoding go together: set both, or "
                         "neither for POPNAS's final model")
    from ablations.popnas_time_regressors import time_model

    return {"time_regressor": time_model(regressor, _encoding(encoding), space).estimator}


def _encoding(name: str) -> str:
    """``name`` checked against ``harness.encodings.PAPER_VARIANTS``."""
    from harness.encodings import PAPER_VARIANTS

    if name not in PAPER_VARIANTS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {sorted(PAPER_VARIANTS)}")
    return name


# ---------------------------------------------------------------------------- experiments
def run_search_folder(config: HarnessConfig, folder: Path):
    """Run (or resume) the search of a job config in ``folder``; its ``SearchResult``."""
    space = build_space(config.experiment.space)
    executor = None if config.executor is None else plain(config.executor)
    with open_executor(executor, folder) as executor_options:
        backend = build_backend(config.backend, space, **executor_options)
        try:
            strategy = build_search(config.search, config.predictor, space, backend, config.seed)
            return strategy.run(folder)
        finally:
            getattr(backend, "close", lambda: None)()


def search_summary(trained: pd.DataFrame) -> pd.DataFrame:
    """Per step: ``models_trained`` (cells with blocks, so far), ``best_accuracy`` so far and
    ``search_time``, the training seconds so far (the empty cell of POPNAS's initial thrust included)."""
    rows = []
    for step in sorted(trained["step"].unique()):
        seen = trained[trained["step"] <= step]
        cells = seen[seen["blocks"] > 0]
        rows.append({"step": int(step), "models_trained": len(cells),
                     "best_accuracy": float(cells["accuracy"].max()),
                     "search_time": float(seen["train_time"].sum())})
    return pd.DataFrame(rows)


def run_search(config: HarnessConfig, output_dir: Path) -> None:
    """The ``search`` experiment: the search in ``search/``, its tables in ``tables/``."""
    from ablations.search_comparisons import popnas_table7

    trained = run_search_folder(config, output_dir / "search").trained
    for name, frame in (("trained", trained), ("summary", search_summary(trained)),
                        ("top_accuracy", popnas_table7(trained))):
        atomic_write_frame(frame, output_dir / "tables" / f"{name}.csv")


def shared_search_folder(config: HarnessConfig, output_dir: Path) -> Path:
    """Where the regressor ablation's search lives: keyed by the config less regressor and encoding."""
    search_config = {k: v for k, v in plain(config).items() if k not in ("regressor", "encoding")}
    name = f"{config.search.name}-seed{config.seed}-{config_hash(search_config)}"
    return output_dir.parent / "searches" / name


def run_regressor_ablation(config: HarnessConfig, output_dir: Path) -> None:
    """The ``regressor_ablation`` experiment: one regressor x encoding on a (shared) search."""
    from ablations.popnas_time_regressors import prediction_rows, proper_and_progressive, time_model

    space = build_space(config.experiment.space)
    regressor = config.regressor
    # built before the search, so a bad name or option fails at once
    model = time_model(regressor.name, _encoding(config.encoding.name), space, **regressor.options)
    folder = shared_search_folder(config, output_dir)
    with locked(folder.parent / f"{folder.name}.lock"):
        trained = run_search_folder(config, folder).trained
    predictions = prediction_rows(trained, space, [model])
    table = proper_and_progressive(predictions, ["regressor", "variant"])
    atomic_write_frame(table, output_dir / "tables" / "relative_error.csv")
    atomic_write_frame(predictions, output_dir / "tables" / "predictions.csv")


def run_fidelity_dial(config: HarnessConfig, output_dir: Path) -> None:
    """The ``fidelity_dial`` experiment: one (method, tau, seed) run of ``ablations.fidelity_dial``, its
    row in ``tables/fidelity.csv``."""
    from ablations.fidelity_dial import fidelity_run, metrics

    experiment = config.experiment
    row = fidelity_run(
        experiment.method, experiment.tau, config.seed, landscape=experiment.landscape,
        max_blocks=experiment.max_blocks, K=experiment.K, rank_sample=experiment.rank_sample,
        predictor=experiment.predictor, predictor_options=experiment.predictor_options,
        backend_options=experiment.backend_options, output_dir=output_dir / "search")
    atomic_write_frame(pd.DataFrame([{k: row[k] for k in metrics(experiment.landscape)}]),
                       output_dir / "tables" / "fidelity.csv")


def _summarise_fidelity_dial(sweep_dir: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    from ablations.fidelity_dial import summarise_sweep

    summarise_sweep(sweep_dir, tables)


def run_paper_experiment(config: HarnessConfig, output_dir: Path) -> None:
    """The ``paper`` experiment: ``harness.app.paper.run_paper`` with the experiment's studies and its
    settings as ``ablations.settings.PaperSettings`` (checked before any study runs)."""
    from ablations.settings import PaperSettings
    from harness.app.paper import run_paper

    experiment = config.experiment
    settings = PaperSettings.of({**plain(experiment.settings), "seed": config.seed})
    sections = run_paper(output_dir, list(experiment.studies), settings)
    log.info("wrote %d tables and %s", len(sections), output_dir / "report.md")


def paper_run_tables(run_dir: str | Path | None, studies: list[str], tables: list[str],
                     settings: Mapping[str, Any]) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The main job's ``tables`` (by id) from the run folder ``run_dir``, for the notebooks.

    When ``run_dir`` is ``None`` or lacks one of them, ``studies`` run first
    at ``settings`` into a new temporary folder, which is returned instead.
    """
    import tempfile

    from harness.app.paper import run_paper

    folder = None if run_dir is None else Path(run_dir)
    if folder is None or not all((folder / "tables" / f"{name}.csv").exists() for name in tables):
        folder = Path(tempfile.mkdtemp(prefix="popnas-notebook-"))
        log.warning("no finished run with %s at %s: running %s into %s", tables, run_dir, studies, folder)
        run_paper(folder, studies, dict(settings))
    return folder, {name: pd.read_csv(folder / "tables" / f"{name}.csv") for name in tables}


def run_table_ablation_experiment(config: HarnessConfig, output_dir: Path) -> None:
    """The ``table_ablation`` experiment: ``ablations.table_ablation.run_table_ablation`` on ``config.table``."""
    from ablations.table_ablation import run_table_ablation

    table = config.table
    run_table_ablation(table.path, output_dir, space=table.space, runs=table.runs,
                       max_blocks=table.max_blocks, max_vertices=table.max_vertices, seed=config.seed,
                       **{k: v for k, v in plain(config.experiment.settings).items() if v not in (None, {})})


#: Experiment name -> runner and result tables.
EXPERIMENTS: dict[str, Experiment] = {
    "paper": Experiment(run_paper_experiment),
    "search": Experiment(run_search, (
        ResultTable("summary", ("step",), ("models_trained", "best_accuracy", "search_time")),
        ResultTable("top_accuracy", ("top", "blocks"), ("mean_accuracy",)),
    )),
    "regressor_ablation": Experiment(run_regressor_ablation, (
        ResultTable("relative_error", ("evaluation", "blocks"), ("mean_relative_error",)),
    )),
    "fidelity_dial": Experiment(run_fidelity_dial, (
        ResultTable("fidelity", (), ("best_clean_accuracy", "best_noisy_accuracy", "oracle_clean_accuracy",
                                     "clean_top_fraction", "search_time", "cells_trained", "clean_rank")),
    ), _summarise_fidelity_dial),
    "table_ablation": Experiment(run_table_ablation_experiment, (
        ResultTable("table_time_regressors", ("regressor", "evaluation", "blocks"),
                    ("mean_relative_error", "kendall_tau")),
    )),
}


def run_experiment(config: HarnessConfig | Mapping[str, Any], output_dir: str | Path) -> None:
    """Run the experiment ``experiment.name`` of a job config into ``output_dir``.

    A config given as plain data (:func:`harness.app.sweep.job_config`) becomes its schemas' dataclasses
    first (:func:`harness.app.config.structured`: a key no schema has fails naming it), and the root
    ``seed`` is checked, before anything runs; the runner gets the dataclasses.
    """
    job = config if isinstance(config, HarnessConfig) else structured(config)
    name = job.experiment.name
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    check_seed(job.seed, "seed")
    EXPERIMENTS[name].run(job, Path(output_dir))


__all__ = [
    "EXPERIMENTS", "Experiment", "ResultTable", "SEARCHABLE_BACKENDS", "build_backend",
    "build_search", "build_space", "paper_run_tables", "run_experiment", "run_fidelity_dial",
    "run_paper_experiment", "run_regressor_ablation", "run_search", "run_search_folder", "run_table_ablation_experiment", "search_summary",
    "shared_search_folder",
]
