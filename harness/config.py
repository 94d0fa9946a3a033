"""Structured configs of ``popnas-harness``: one dataclass per config-group option, in Hydra's ConfigStore.

Every YAML file under ``conf/`` names its schema first in its defaults list
(``- /schema/backend/surrogate@_here_``), so Hydra checks every key and type while it
composes the configuration: a misspelt key (``backend.tua=0.5``) or a wrong
type (``seed=abc``) stops the command before anything runs, with Hydra's
message naming the key.

Groups, one per concern (``conf/<group>/<option>.yaml``)
    ``experiment``  what a job runs: ``paper`` (the main job), ``search``,
                    ``regressor_ablation``; an experiment pulls in the groups
                    it uses, so ``backend=...`` with ``experiment=paper`` is
                    refused ("no match in the defaults list").
    ``backend``     the evaluator (``backends.make``): surrogate, training, table, nb201.
    ``executor``    where the training backend's child networks train (only
                    with ``backend=training``): serial, process,
                    submitit_local, submitit_slurm, dask_local.
    ``search``      the strategy: pnas, popnas, random, evolution.
    ``predictor``   the accuracy predictor of PNAS and POPNAS.
    ``regressor``, ``encoding``
                    the time regressor and its encoding that the regressor
                    ablation evaluates.

A backend option left ``null`` means the component's own default (the
backend constructor's), so every default lives in one place.

Hydra merges the YAML files and the command line into these schemas, which
it cannot do with frozen dataclasses, so they are mutable; a job receives
its configuration read-only all the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class RunFolder(Enum):
    """How a single run's folder under ``outputs/<experiment>/`` is named."""

    #: ``seed=<seed>``: the main job's folder, rewritten (and its searches resumed) by every run.
    seed = "seed"
    #: the hash of the resolved configuration: a finished job is skipped when run again.
    hash = "hash"


# ---------------------------------------------------------------------------- experiments
@dataclass
class ExperimentConfig:
    """What one job runs; ``name`` picks the runner and the output folder ``outputs/<name>/``."""

    name: str = MISSING
    run_folder: RunFolder = RunFolder.hash


@dataclass
class SpaceConfig:
    """The cell space searched (``backends.base.resolve_space``): ``pnas`` or ``popnas``."""

    name: str = "pnas"
    max_blocks: int = 5
    lookback: int = 2


@dataclass
class PaperRegressorSettings:
    """The main job's time-regressor studies (POPNAS Tables 3-6), on the first ``max_blocks``
    steps of the shared PNAS searches (``searches``)."""

    max_blocks: int = MISSING
    #: XGBoost's grid; null = POPNAS's full 288-point grid.
    xgboost_grid: Optional[Dict[str, Any]] = None


@dataclass
class PaperSearchSettings:
    """The main job's searches (POPNAS Tables 3-8, PNAS Fig. 4): one per strategy and seed."""

    max_blocks: int = MISSING
    K: int = MISSING


@dataclass
class PaperRastriginSettings:
    """The main job's GA-on-noisy-Rastrigin tables (thesis Tables 4.3 and 5.4)."""

    table4_3_repetitions: int = MISSING
    table5_4_repetitions: int = MISSING
    #: grid resolution of the 3-d table; null = the study's default.
    resolution_3d: Optional[int] = None
    #: grid resolution of Table 5.4; null = the study's default per dimension.
    resolution: Optional[int] = None


@dataclass
class PaperSettings:
    """``ablations.paper.run_paper``'s settings, handed over as written (a study reads a null
    setting as it reads a missing one: its default)."""

    max_blocks: int = MISSING
    seeds: List[int] = MISSING
    surrogate: Dict[str, Any] = field(default_factory=dict)
    #: the measured table: null = the embedded one, ``none`` = no measured table (surrogate only).
    measured_table: Optional[str] = None
    predictor: Dict[str, Any] = field(default_factory=dict)
    calibration_cells_per_block_count: int = MISSING
    regressors: PaperRegressorSettings = field(default_factory=PaperRegressorSettings)
    searches: PaperSearchSettings = field(default_factory=PaperSearchSettings)
    rastrigin: PaperRastriginSettings = field(default_factory=PaperRastriginSettings)
    #: options of the regularized-evolution baseline (population_size, sample_size).
    evolution: Dict[str, Any] = field(default_factory=dict)
    #: options of ``POPNAS.v1``, the v1 preset of Tables 7-8 (predictor_options, ...).
    popnas_v1: Dict[str, Any] = field(default_factory=dict)
    #: the time-limit study: quantiles of the one-block times, searches, seeds.
    popnas_time_limit: Dict[str, Any] = field(default_factory=dict)
    #: options of the PNAS Table 1 study (``ablations.pnas_table1``).
    pnas_table1: Dict[str, Any] = field(default_factory=dict)
    #: options of the NAS-Bench-201 studies (data_dir, time_regressors, predictor_ranking).
    nb201: Dict[str, Any] = field(default_factory=dict)
    #: scale of the fidelity_dial study (max_blocks, K, taus, methods, seeds, rank_sample).
    fidelity_dial: Dict[str, Any] = field(default_factory=dict)
    #: scale of the fidelity_dial study on NAS-Bench-201 (K, taus, methods, seeds, predictor, dataset, cost).
    fidelity_dial_nb201: Dict[str, Any] = field(default_factory=dict)


@dataclass
class PaperExperiment(ExperimentConfig):
    """The main job: the studies of ``ablations.paper.STUDIES`` at the scale of ``settings``."""

    name: str = "paper"
    run_folder: RunFolder = RunFolder.seed
    studies: List[str] = MISSING
    settings: PaperSettings = field(default_factory=PaperSettings)


@dataclass
class SearchExperiment(ExperimentConfig):
    """One search strategy (``search``) on one backend with one seed; writes its tables."""

    name: str = "search"
    space: SpaceConfig = field(default_factory=SpaceConfig)


@dataclass
class RegressorAblationExperiment(ExperimentConfig):
    """One time regressor on one encoding, fitted and scored step by step on a search's trained cells."""

    name: str = "regressor_ablation"
    space: SpaceConfig = field(default_factory=SpaceConfig)


@dataclass
class FidelityDialExperiment(ExperimentConfig):
    """One run of the ``fidelity_dial`` study (``ablations.fidelity_dial.fidelity_run``): the search
    ``method`` with the job's seed on ``landscape`` (``surrogate`` or ``nb201``) at evaluator
    fidelity ``tau``."""

    name: str = "fidelity_dial"
    method: str = "pnas"
    tau: float = 1.0
    #: ``surrogate`` (noisy Rastrigin over PNAS cells) or ``nb201`` (NAS-Bench-201 through the copula).
    landscape: str = "surrogate"
    #: the surrogate's cell size (null: 5); NAS-Bench-201 has its own, leave it null there.
    max_blocks: Optional[int] = None
    K: int = 256
    #: uniform cells the picked cell's clean accuracy is ranked among (surrogate; exact on nb201).
    rank_sample: int = 100_000
    #: PNAS's and POPNAS's accuracy predictor and its options (null: the landscape's default,
    #: ``ablations.fidelity_dial.LANDSCAPES``).
    predictor: Optional[str] = None
    predictor_options: Dict[str, Any] = field(default_factory=dict)
    #: other options of the backend (not ``tau``): the surrogate's, or NB201's dataset, cost, data_dir.
    backend_options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TableAblationSettings:
    """Keyword arguments of ``ablations.table_ablation.run_table_ablation`` (null or empty = its default)."""

    regressors: Optional[List[str]] = None
    predictors: Optional[List[str]] = None
    train_sizes: Optional[List[int]] = None
    trials: int = 3
    n_boot: int = 200
    #: XGBoost's grid; empty = the small 2-setting grid of ablations.nb201_studies.SMALL_XGB_GRID.
    xgboost_grid: Dict[str, Any] = field(default_factory=dict)
    #: options of the cost features' network (harness.cost_features.CostFeatures ``network``); empty = defaults.
    cost_network: Dict[str, Any] = field(default_factory=dict)
    #: predictor name -> options of harness.search_space.accuracy_predictor.
    predictor_options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TableAblationExperiment(ExperimentConfig):
    """``ablations.table_ablation.run_table_ablation`` on the user's table named by the root ``table`` node."""

    name: str = "table_ablation"
    settings: TableAblationSettings = field(default_factory=TableAblationSettings)


@dataclass
class UserTableConfig:
    """A user's own results table (``backends.user_table.load_user_table``)."""

    path: str = MISSING
    #: nb101, pnas, popnas or nb201
    space: str = "nb101"
    #: mean (repeats averaged) or keep
    runs: str = "mean"
    max_blocks: Optional[int] = None
    max_vertices: Optional[int] = None


# ---------------------------------------------------------------------------- backends
@dataclass
class BackendConfig:
    """An evaluator by its ``backends.make`` name; other fields are its options (null = its default)."""

    name: str = MISSING


@dataclass
class SurrogateBackendConfig(BackendConfig):
    """``backends.surrogate.SurrogateBackend``'s options."""

    name: str = "surrogate"
    tau: Optional[float] = None
    time_tau: Optional[float] = None
    max_epochs: Optional[int] = None
    fidelity_exponent: Optional[float] = None
    dims: Optional[int] = None
    landscape_seed: Optional[int] = None
    time_scale: Optional[float] = None
    time_overhead: Optional[float] = None
    time_growth: Optional[float] = None
    operator_costs: Optional[Dict[str, float]] = None
    input_cost: Optional[float] = None
    empty_accuracy: Optional[float] = None
    reference_size: Optional[int] = None


@dataclass
class TrainingBackendConfig(BackendConfig):
    """``backends.training.TrainingBackend``'s options (the executor is the ``executor`` group)."""

    name: str = "training"
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    batches: Optional[List[str]] = None
    train_size: Optional[int] = None
    val_size: Optional[int] = None
    split_seed: Optional[int] = None
    filters: Optional[int] = None
    cells_per_stage: Optional[int] = None
    reduction: Optional[str] = None
    max_epochs: Optional[int] = None
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    batch_size: Optional[int] = None
    device: Optional[str] = None
    precision: Optional[str] = None
    deterministic: Optional[bool] = None
    threads_per_worker: Optional[int] = None
    clock: Optional[str] = None
    precise_bn: Optional[bool] = None


@dataclass
class TableBackendConfig(BackendConfig):
    """``backends.table.TableBackend``'s options (``path`` null = the embedded measured table)."""

    name: str = "table"
    path: Optional[str] = None
    run: Optional[str] = None
    fallback: Optional[str] = None
    fallback_options: Optional[Dict[str, Any]] = None


@dataclass
class NB201BackendConfig(BackendConfig):
    """``backends.nb201.NB201Backend``'s options (its own NAS-Bench-201 cell space)."""

    name: str = "nb201"
    data_dir: Optional[str] = None
    dataset: Optional[str] = None
    cost: Optional[str] = None
    #: Kendall tau of the served accuracy to the table's (null: 1, the table itself).
    tau: Optional[float] = None


# ---------------------------------------------------------------------------- executors
@dataclass
class ExecutorConfig:
    """Where the training backend trains each child network (one task per cell).

    ``name`` labels the option; ``kind`` (set by each schema) says what
    ``harness.experiments.open_executor`` builds. This one runs the cells
    one after another in the job's process.
    """

    name: str = "serial"
    kind: str = "serial"


@dataclass
class ProcessExecutorConfig(ExecutorConfig):
    """A local spawned process pool: one worker per GPU on CUDA, else ``workers`` CPU processes."""

    name: str = "process"
    kind: str = "process"
    workers: Optional[int] = None


@dataclass
class SubmititExecutorConfig(ExecutorConfig):
    """One submitit job per cell (``harness.experiments.SubmititExecutor``).

    ``cluster``: ``local`` (subprocesses of this machine), ``slurm``, or
    null (submitit's choice: SLURM where ``sbatch`` exists). ``folder``
    (logs and pickles) is relative to the job's folder. At most
    ``max_running`` jobs are in the queue at once (null = no limit).
    """

    name: str = MISSING
    kind: str = "submitit"
    cluster: Optional[str] = None
    folder: str = "submitit"
    max_running: Optional[int] = None
    poll_interval: float = 1.0
    timeout_min: int = 60
    cpus_per_task: int = 1
    gpus_per_node: int = 0
    mem_gb: Optional[float] = None
    slurm_partition: Optional[str] = None
    slurm_additional_parameters: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DaskExecutorConfig(ExecutorConfig):
    """A dask.distributed client's executor: a ``LocalCluster``, or the scheduler at ``address``."""

    name: str = "dask_local"
    kind: str = "dask"
    address: Optional[str] = None
    n_workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True


# ---------------------------------------------------------------------------- search parts
@dataclass
class SearchConfig:
    """A strategy of ``harness.search`` by name, with the settings every strategy has."""

    name: str = MISSING
    K: int = 256
    #: training epochs per cell; null = the backend's full fidelity.
    epochs: Optional[int] = None
    #: cells per evaluation call (each stored at once, so a killed run resumes); null = a step at once.
    eval_chunk: Optional[int] = None


@dataclass
class POPNASConfig(SearchConfig):
    """POPNAS's own settings. ``time_regressor`` and ``time_encoding`` go together;
    both null = POPNAS's final model (``harness.search.default_time_regressor``).
    ``front`` is the front rule (``harness.search.pareto.FRONT_RULES``);
    ``integer_time_features`` the v1 code's truncation of the predicted cells'
    time features (needs the final model). ``search=popnas_v1`` sets both as
    ``harness.search.POPNAS_V1`` does."""

    name: str = "popnas"
    time_limit: Optional[float] = None
    pareto: bool = True
    front: str = "strict"
    integer_time_features: bool = False
    initial_thrust: bool = True
    time_regressor: Optional[str] = None
    time_encoding: Optional[str] = None


@dataclass
class EvolutionConfig(SearchConfig):
    """Regularized evolution's population and tournament sizes (null = the strategy's defaults)."""

    name: str = "evolution"
    population_size: Optional[int] = None
    sample_size: Optional[int] = None


@dataclass
class PredictorConfig:
    """An accuracy predictor of ``harness.predictors.make_predictor`` and its constructor options."""

    name: str = MISSING
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RegressorConfig:
    """A time regressor of ``harness.regressors.make_regressor`` and its constructor options."""

    name: str = MISSING
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class EncodingChoice:
    """An encoding of ``harness.encodings.PAPER_VARIANTS`` by name."""

    name: str = MISSING


# ---------------------------------------------------------------------------- the whole job
@dataclass
class HarnessConfig:
    """The root: the seed, the experiment, and the groups the experiment pulled in (else null)."""

    seed: int = 0
    experiment: Any = MISSING
    backend: Any = None
    executor: Any = None
    search: Any = None
    predictor: Any = None
    regressor: Any = None
    encoding: Any = None
    table: Any = None


#: (group, option, schema) of every config-group option; the option's YAML file names it first in its
#: defaults list as ``/schema/<group>/<name>@_here_``. Schemas live in their own ``schema/`` groups, so
#: they never show among a group's options.
SCHEMAS: tuple[tuple[str, str, type], ...] = (
    ("experiment", "paper", PaperExperiment),
    ("experiment", "search", SearchExperiment),
    ("experiment", "regressor_ablation", RegressorAblationExperiment),
    ("experiment", "fidelity_dial", FidelityDialExperiment),
    ("experiment", "table_ablation", TableAblationExperiment),
    ("table", "table", UserTableConfig),
    ("backend", "surrogate", SurrogateBackendConfig),
    ("backend", "training", TrainingBackendConfig),
    ("backend", "table", TableBackendConfig),
    ("backend", "nb201", NB201BackendConfig),
    ("executor", "serial", ExecutorConfig),
    ("executor", "process", ProcessExecutorConfig),
    ("executor", "submitit", SubmititExecutorConfig),
    ("executor", "dask", DaskExecutorConfig),
    ("search", "search", SearchConfig),
    ("search", "popnas", POPNASConfig),
    ("search", "evolution", EvolutionConfig),
    ("predictor", "predictor", PredictorConfig),
    ("regressor", "regressor", RegressorConfig),
    ("encoding", "encoding", EncodingChoice),
)


def register_configs() -> None:
    """Store the root schema (``harness_schema``) and every option's schema in Hydra's ConfigStore."""
    store = ConfigStore.instance()
    store.store(name="harness_schema", node=HarnessConfig)
    for group, name, node in SCHEMAS:
        store.store(group=f"schema/{group}", name=name, node=node)


def check_keys(cfg: DictConfig, path: str = "") -> None:
    """Refuse keys a schema does not have, added with Hydra's ``+key=value`` (which bypasses the schema).

    Free-form option mappings (``Dict[str, Any]`` fields) are not checked:
    their components check them.
    """
    schema = OmegaConf.get_type(cfg)
    if dataclasses.is_dataclass(schema):
        fields = {f.name for f in dataclasses.fields(schema)}
        extra = sorted(set(cfg.keys()) - fields)
        if extra:
            raise ValueError(f"unknown key(s) {[path + str(k) for k in extra]}: {schema.__name__} has "
                             f"{sorted(fields)}")
    for key in cfg.keys():
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(node)):
            check_keys(node, f"{path}{key}.")


# at import, like any ConfigStore registration: composing needs the schemas, and harness.cli imports this
register_configs()

__all__ = [
    "BackendConfig", "DaskExecutorConfig", "EncodingChoice", "EvolutionConfig", "ExecutorConfig",
    "ExperimentConfig", "FidelityDialExperiment", "HarnessConfig", "NB201BackendConfig", "POPNASConfig", "PaperExperiment",
    "PaperRastriginSettings", "PaperRegressorSettings", "PaperSearchSettings",
    "PaperSettings", "PredictorConfig", "ProcessExecutorConfig", "RegressorAblationExperiment",
    "RegressorConfig", "RunFolder", "SCHEMAS", "SearchConfig", "SearchExperiment", "SpaceConfig",
    "SubmititExecutorConfig", "SurrogateBackendConfig", "TableAblationExperiment", "TableAblationSettings",
    "TableBackendConfig",
    "TrainingBackendConfig", "UserTableConfig",
    "check_keys", "register_configs",
]
