"""The main job's settings (``experiment.settings``): one frozen dataclass per group, the one place
their defaults are written.

``conf/experiment/paper.yaml`` sets only the main job's scale where it differs from these defaults;
:meth:`PaperSettings.of` builds the settings from that YAML, a job's saved configuration or a
notebook's dict. Every key is checked before any study runs: a key no dataclass has
(``experiment.settings.searches.KK=3``) fails naming it, a value of the wrong type fails naming its
key, and the free-form option mappings handed on to a component (``surrogate``, ``evolution``,
``pnas_table1``, the NB201 studies' ...) are checked against that component's keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ablations.fidelity_dial import METHODS as FIDELITY_METHODS
from ablations.fidelity_dial import TAUS as FIDELITY_TAUS
from harness.validation import check_options, check_seed, typed

#: How the settings' keys are named in messages: as the main job's configuration spells them.
SETTINGS_KEY = "experiment.settings"

#: ``measured_table`` value for "no measured table": the studies use the surrogate only.
NO_MEASURED_TABLE = "none"


@dataclass(frozen=True)
class PredictorSettings:
    """An accuracy predictor of PNAS and POPNAS (``harness.predictors.make_predictor``) and its options:
    the shape of ``conf/predictor/*.yaml``."""

    name: str = "mlp-ensemble"
    options: Mapping[str, Any] = field(default_factory=dict)

    def search_options(self) -> dict[str, Any]:
        """The keyword arguments PNAS and POPNAS take for it."""
        return {"predictor": self.name, "predictor_options": dict(self.options)}


@dataclass(frozen=True)
class SearchSettings:
    """The shared PNAS, POPNAS, random-search and evolution searches (POPNAS Tables 3-8, PNAS Fig. 4):
    B and K as in the papers."""

    max_blocks: int = 5
    K: int = 256


@dataclass(frozen=True)
class RegressorSettings:
    """The time-regressor studies (POPNAS Tables 3-6): the first ``max_blocks`` steps of the shared PNAS
    searches (the paper ablates with B = 4)."""

    max_blocks: int = 4
    #: XGBoost's grid; None = POPNAS's full 288-point grid.
    xgboost_grid: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TimeLimitSettings:
    """The time-limit study: L = a quantile of the one-block times x B, for PNAS and POPNAS."""

    quantiles: tuple[float, ...] = (0.5, 0.75, 0.9)
    searches: tuple[str, ...] = ("pnas", "popnas")
    #: None = the first of the main job's seeds.
    seeds: tuple[int, ...] | None = None
    #: None = the shared searches' K.
    K: int | None = None
    #: None = the main job's predictor (its searches get their own folders otherwise).
    predictor: PredictorSettings | None = None


@dataclass(frozen=True)
class RastriginSettings:
    """The GA-on-noisy-Rastrigin tables (thesis Tables 4.3 and 5.4)."""

    table4_3_repetitions: int = 1000
    table5_4_repetitions: int = 100
    #: grid resolution of the 3-d table; None = the study's default.
    resolution_3d: int | None = None
    #: grid resolution of Table 5.4; None = the study's default per dimension.
    resolution: int | None = None


@dataclass(frozen=True)
class NB201Settings:
    """The NAS-Bench-201 studies; each mapping holds keyword arguments of its study function."""

    #: None: ``$POPNAS_NB201_DIR``, else the packaged table (``backends/data/nb201``).
    data_dir: str | None = None
    time_regressors: Mapping[str, Any] = field(default_factory=dict)
    predictor_ranking: Mapping[str, Any] = field(default_factory=dict)
    searches: Mapping[str, Any] = field(default_factory=dict)
    #: ``targets`` (default cifar10 accuracy and one latency) and ``nb201_train_sizes``'s arguments.
    train_sizes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FidelityDialSettings:
    """Search quality versus evaluator fidelity, reduced (the full study is its sweep, README)."""

    max_blocks: int = 3
    K: int = 32
    rank_sample: int = 20_000
    taus: tuple[float, ...] = FIDELITY_TAUS
    methods: tuple[str, ...] = FIDELITY_METHODS
    #: None = the main job's seeds.
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class FidelityDialNB201Settings:
    """The fidelity_dial study on NAS-Bench-201's real accuracies through the copula, reduced (the full
    study, 20 seeds, is the sweep on the nb201 landscape, README)."""

    K: int = 32
    taus: tuple[float, ...] = FIDELITY_TAUS
    methods: tuple[str, ...] = FIDELITY_METHODS
    #: a count (seeds 0 .. n-1) or the seeds.
    seeds: int | tuple[int, ...] = 10
    predictor: str = "ridge-ensemble"
    #: the NB201 backend's accuracy dataset and latency device; None = its defaults.
    dataset: str | None = None
    cost: str | None = None


@dataclass(frozen=True)
class PaperSettings:
    """Everything the main job's studies read, with their defaults (the papers' scale, except where a
    field says otherwise)."""

    #: the job's seed (the root ``seed``): the seed of the studies that are not searches.
    seed: int = 0
    #: the space-count study's largest block count.
    max_blocks: int = 5
    #: seeds of the surrogate searches: tables report mean and std over them.
    seeds: tuple[int, ...] = (0,)
    #: options of ``backends.make("surrogate")``.
    surrogate: Mapping[str, Any] = field(default_factory=dict)
    #: the measured table: None = the embedded one, ``"none"`` = no measured table (surrogate only).
    measured_table: str | None = None
    #: PNAS's and POPNAS's accuracy predictor.
    predictor: PredictorSettings = field(default_factory=PredictorSettings)
    calibration_cells_per_block_count: int = 2000
    regressors: RegressorSettings = field(default_factory=RegressorSettings)
    searches: SearchSettings = field(default_factory=SearchSettings)
    #: options of the regularized-evolution baseline (``population_size``, ``sample_size``).
    evolution: Mapping[str, Any] = field(default_factory=dict)
    #: options of ``POPNAS.v1``, the v1 preset of Tables 7-8 (``predictor_options``, ...).
    popnas_v1: Mapping[str, Any] = field(default_factory=dict)
    popnas_time_limit: TimeLimitSettings = field(default_factory=TimeLimitSettings)
    rastrigin: RastriginSettings = field(default_factory=RastriginSettings)
    #: arguments of ``ablations.pnas_table1.pnas_table1`` (``max_blocks``, ``K``, ``R``, ...).
    pnas_table1: Mapping[str, Any] = field(default_factory=dict)
    nb201: NB201Settings = field(default_factory=NB201Settings)
    fidelity_dial: FidelityDialSettings = field(default_factory=FidelityDialSettings)
    fidelity_dial_nb201: FidelityDialNB201Settings = field(default_factory=FidelityDialNB201Settings)

    @classmethod
    def of(cls, settings: PaperSettings | Mapping[str, Any] | None) -> PaperSettings:
        """The checked settings from a mapping (or as given); a ``ValueError`` names a bad key."""
        built = typed(cls, {} if settings is None else settings, SETTINGS_KEY)
        built.check()
        return built

    def check(self) -> None:
        """Refuse values no study could run with, before any runs; the message names the key.

        The free-form option mappings are checked against the keyword arguments of the component
        they go to; ``seed`` and ``seeds`` must be non-negative integers, ``seeds`` not empty;
        ``measured_table`` an existing file or folder unless None or ``"none"``; the ``surrogate``
        options build a surrogate backend, and ``predictor`` a predictor.
        """
        from pathlib import Path

        import backends
        from ablations.nb201_searches import nb201_pnas_vs_popnas
        from ablations.nb201_studies import nb201_predictor_ranking, nb201_time_regressors
        from ablations.nb201_train_sizes import nb201_train_sizes
        from ablations.pnas_table1 import pnas_table1
        from backends.surrogate import SurrogateBackend
        from harness.predictors import make_predictor
        from harness.search import POPNAS, RegularizedEvolution

        check_seed(self.seed, "seed")
        if not self.seeds:
            raise ValueError(f"{SETTINGS_KEY}.seeds must be a non-empty list of seeds, got {list(self.seeds)}")
        for i, seed in enumerate(self.seeds):
            check_seed(seed, f"{SETTINGS_KEY}.seeds[{i}]")
        table = self.measured_table
        if table is not None and table != NO_MEASURED_TABLE and not Path(table).exists():
            raise FileNotFoundError(
                f"{SETTINGS_KEY}.measured_table={table!r} does not exist (relative paths are from "
                f"{Path.cwd()}); give an existing table, null for the embedded one or {NO_MEASURED_TABLE!r} "
                "for none")
        searched = ("space", "backend", "K", "seed")
        for options, function, key, leave_out in (
            (self.surrogate, SurrogateBackend, "surrogate", ("space", "max_blocks", "lookback")),
            (self.evolution, RegularizedEvolution, "evolution", searched),
            (self.popnas_v1, POPNAS, "popnas_v1", (*searched, "time_limit")),
            (self.pnas_table1, pnas_table1, "pnas_table1", ("backend", "seed")),
            (self.nb201.time_regressors, nb201_time_regressors, "nb201.time_regressors", ("data_dir", "seed")),
            (self.nb201.predictor_ranking, nb201_predictor_ranking, "nb201.predictor_ranking",
             ("data_dir", "seed")),
            (self.nb201.searches, nb201_pnas_vs_popnas, "nb201.searches", ("data_dir",)),
            ({k: v for k, v in self.nb201.train_sizes.items() if k != "targets"}, nb201_train_sizes,
             "nb201.train_sizes", ("data_dir", "target", "seed")),
        ):
            check_options(function, options, f"{SETTINGS_KEY}.{key}", leave_out)
        for key, value in self.surrogate.items():
            if isinstance(value, bool):
                raise ValueError(f"{SETTINGS_KEY}.surrogate.{key} must be a number, got {value!r}")
        try:
            backends.make("surrogate", **self.surrogate)
        except (TypeError, ValueError) as err:
            # the backend's messages start with the option's name ("tau must be a real number in (0, 1] ...")
            named = any(str(err).startswith(f"{key} ") for key in self.surrogate)
            raise ValueError(f"{SETTINGS_KEY}.surrogate{'.' if named else ': '}{err}") from None
        for key, predictor in (("predictor", self.predictor), ("popnas_time_limit.predictor",
                                                               self.popnas_time_limit.predictor)):
            if predictor is not None:
                try:
                    make_predictor(predictor.name, **predictor.options)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{SETTINGS_KEY}.{key}: {err}") from None


__all__ = [
    "FidelityDialNB201Settings", "FidelityDialSettings", "NB201Settings", "NO_MEASURED_TABLE", "PaperSettings", "PredictorSettings",
    "RastriginSettings", "RegressorSettings", "SETTINGS_KEY", "SearchSettings", "TimeLimitSettings",
]
