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

import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Literal, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from harness.validation import typed


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
    """The cell space searched (``harness.evaluator.resolve_space``): ``pnas`` or ``popnas``."""

    name: str = "pnas"
    max_blocks: int = 5
    lookback: int = 2


def _mutable_type(annotation: Any) -> Any:
    """The annotation of a frozen settings field as OmegaConf takes it (lists for tuples, nested
    settings as their mutable schemas)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return Optional[_mutable_type(kinds[0])] if len(kinds) == 1 else Any
    if dataclasses.is_dataclass(annotation):
        return mutable_schema(annotation)
    if origin in (tuple, list):
        return List[args[0]] if args and args[0] in (int, float, str, bool) else List[Any]  # type: ignore[misc]
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, collections.abc.Mapping):
        return Dict[str, Any]
    return annotation


def _mutable_default(f: dataclasses.Field, kind: Any) -> Any:
    """``field(...)`` of the mutable schema: the frozen field's default, as a fresh object per instance."""
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if dataclasses.is_dataclass(default):
        schema = kind if dataclasses.is_dataclass(kind) else typing.get_args(kind)[0]
        return field(default_factory=lambda: typed(schema, plain(default), "default"))
    if isinstance(default, (tuple, list, dict)):
        return field(default_factory=lambda: plain(default))
    return field(default=default)


@functools.cache
def mutable_schema(settings: type, leave_out: tuple[str, ...] = ()) -> type:
    """The Hydra schema of a frozen settings dataclass: the same fields (but ``leave_out``), types and
    defaults, mutable (Hydra merges the YAML and the command line into it), so the frozen class stays
    their one source."""
    hints = typing.get_type_hints(settings)
    fields = []
    for f in dataclasses.fields(settings):
        if f.name in leave_out:
            continue
        kind = _mutable_type(hints[f.name])
        fields.append((f.name, kind, _mutable_default(f, kind)))
    schema = dataclasses.make_dataclass(settings.__name__, fields)
    schema.__doc__ = f"Hydra's schema of ``{settings.__module__}.{settings.__qualname__}``."
    schema.__module__ = __name__
    return schema


def _paper_settings_schema() -> type:
    from ablations.settings import PaperSettings

    # the job's seed is the root ``seed``, handed to the settings by the paper experiment
    return mutable_schema(PaperSettings, ("seed",))


@dataclass
class PaperExperiment(ExperimentConfig):
    """The main job: the studies of ``harness.app.paper.STUDIES`` at the scale of ``settings``."""

    name: str = "paper"
    run_folder: RunFolder = RunFolder.seed
    studies: List[str] = MISSING
    #: ``ablations.settings.PaperSettings``'s keys, types and defaults (written there once), as Hydra's
    #: mutable schema; the job gets the frozen settings, checked again before any study runs
    settings: _paper_settings_schema() = field(  # type: ignore[valid-type]
        default_factory=_paper_settings_schema())


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


def _schema_type(annotation: Any) -> Any:
    """The type OmegaConf can check for a constructor's annotation (``Any`` where it has none)."""
    options = [a for a in typing.get_args(annotation) if a is not type(None)] \
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) else [annotation]
    if len(options) > 1 and str in options:
        return str  # a path given as text (str | os.PathLike)
    if len(options) != 1:
        return Any
    kind = options[0]
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind in (int, float, str, bool):
        return kind
    if origin is Literal and all(isinstance(a, str) for a in args):
        return str
    if origin in (tuple, list) and args and args[0] in (int, float, str, bool):
        return List[args[0]]  # type: ignore[valid-type]
    if origin is dict and len(args) == 2 and args[0] is str:
        return Dict[str, args[1] if args[1] in (int, float, str, bool) else Any]  # type: ignore[misc]
    return Any


def constructor_schema(component: type, name: str, leave_out: tuple[str, ...] = ()) -> type:
    """The config schema of ``component``: ``name`` and one nullable field per keyword argument of its
    constructor but ``leave_out`` (null = the constructor's default), so the constructor is the one list
    of its options and a new argument can be set from the command line at once."""
    hints = typing.get_type_hints(component.__init__)
    fields: list[tuple[str, Any, Any]] = [("name", str, field(default=name))]
    for param in inspect.signature(component.__init__).parameters.values():
        if param.name != "self" and param.name not in leave_out and param.kind in (
                param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            fields.append((param.name, Optional[_schema_type(hints.get(param.name, Any))], field(default=None)))
    schema = dataclasses.make_dataclass(f"{component.__name__}Config", fields, bases=(BackendConfig,))
    schema.__doc__ = (f"``{component.__module__}.{component.__qualname__}``'s options, from its constructor "
                      f"(not set here: {', '.join(leave_out) or 'none'}).")
    schema.__module__ = __name__
    return schema


def _backend_schemas() -> tuple[type, type, type, type]:
    from backends.nb201 import NB201Backend
    from backends.surrogate import SurrogateBackend
    from backends.table import TableBackend
    from backends.training import TrainingBackend

    # the cell space is the experiment's (experiment.space); the training backend's executor its own group
    in_space = ("space", "max_blocks", "lookback")
    return (constructor_schema(SurrogateBackend, "surrogate", in_space),
            constructor_schema(TrainingBackend, "training", (*in_space, "executor", "workers")),
            constructor_schema(TableBackend, "table", in_space),
            constructor_schema(NB201Backend, "nb201"))


SurrogateBackendConfig, TrainingBackendConfig, TableBackendConfig, NB201BackendConfig = _backend_schemas()


# ---------------------------------------------------------------------------- executors
@dataclass
class ExecutorConfig:
    """Where the training backend trains each child network (one task per cell).

    ``name`` labels the option; ``kind`` (set by each schema) says what
    ``backends.executors.open_executor`` builds. This one runs the cells
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
    """One submitit job per cell (``backends.executors.SubmititExecutor``).

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
class RandomConfig(SearchConfig):
    """Random search's own setting (null = the strategy's default)."""

    name: str = "random"
    #: sample uniformly over every block count at once instead of step by step.
    whole_space: Optional[bool] = None


@dataclass
class EvolutionConfig(RandomConfig):
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
    ("search", "random", RandomConfig),
    ("search", "evolution", EvolutionConfig),
    ("predictor", "predictor", PredictorConfig),
    ("regressor", "regressor", RegressorConfig),
    ("encoding", "encoding", EncodingChoice),
)


#: Search options whose schema is another option's (a preset of a strategy, or a strategy with no
#: settings of its own).
_SEARCH_SCHEMAS: dict[str, str] = {"popnas_v1": "popnas", "pnas": "search"}


def schema_of(group: str, options: Mapping[str, Any]) -> type:
    """The schema of a config-group option given as plain data (a job's saved ``config.yaml``): by its
    ``name``, or its ``kind`` for an executor."""
    schemas = {name: node for g, name, node in SCHEMAS if g == group}
    if len(schemas) == 1:
        return next(iter(schemas.values()))
    key = options.get("kind") if group == "executor" else options.get("name")
    key = _SEARCH_SCHEMAS.get(key, key) if group == "search" else key
    if key not in schemas:
        raise ValueError(f"{group}: no schema for {key!r}; the {group} schemas are {sorted(schemas)}")
    return schemas[key]


def structured(config: Mapping[str, Any] | DictConfig) -> HarnessConfig:
    """A job's resolved configuration as its schemas' dataclasses: what every experiment receives.

    Takes Hydra's composed config or the same as plain data (:func:`harness.app.sweep.job_config`, a
    job's ``config.yaml``, a test's dict); a key no schema has or a value of the wrong type fails with a
    ``ValueError`` naming it (``search.KK``), before anything runs.
    """
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True, throw_on_missing=True, enum_to_str=True)
    groups = {key: value if key == "seed" or value is None else typed(schema_of(key, value), value, key)
              for key, value in config.items() if key != "hydra"}
    return typed(HarnessConfig, groups, "config")


def plain(config: Any) -> Any:
    """A structured config (or part of one) as the plain data it was built from (enums as values)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Enum):
        return config.value
    if isinstance(config, Mapping):
        return {k: plain(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [plain(v) for v in config]
    return config


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


# at import, like any ConfigStore registration: composing needs the schemas, and harness.app.cli imports this
register_configs()

__all__ = [
    "mutable_schema",
    "BackendConfig", "DaskExecutorConfig", "EncodingChoice", "EvolutionConfig", "ExecutorConfig",
    "ExperimentConfig", "FidelityDialExperiment", "HarnessConfig", "NB201BackendConfig", "POPNASConfig", "PaperExperiment",
    "PredictorConfig", "ProcessExecutorConfig", "RegressorAblationExperiment",
    "RandomConfig", "RegressorConfig", "RunFolder", "SCHEMAS", "SearchConfig", "SearchExperiment", "SpaceConfig",
    "SubmititExecutorConfig", "SurrogateBackendConfig", "TableAblationExperiment", "TableAblationSettings",
    "TableBackendConfig", "TrainingBackendConfig", "UserTableConfig",
    "check_keys", "constructor_schema", "plain", "register_configs", "schema_of", "structured",
]
