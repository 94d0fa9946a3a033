"""Structured configs: groups match the registries, bad keys and types fail at start-up, folders are fixed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

import backends
from ablations.settings import PaperSettings
from backends.executors import open_executor
from harness.app.config import NB201BackendConfig, RunFolder, check_keys, structured
from harness.app.experiments import build_backend, build_search, build_space, run_paper_experiment
from harness.app.sweep import config_hash, job_config
from harness.encodings import PAPER_VARIANTS
from harness.predictors import PREDICTOR_NAMES
from harness.regressors import REGRESSORS
from tests.conftest import REPO_ROOT

CONF = REPO_ROOT / "conf"


def compose_job(*overrides: str, hydra_node: bool = False):
    """The composed configuration for ``overrides``, as the command would build it."""
    with initialize_config_module(config_module="conf", version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra_node)


def options(group: str) -> set[str]:
    """The YAML options of a config group."""
    return {path.stem for path in (CONF / group).glob("*.yaml")}


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """``popnas-harness`` with ``overrides`` (through the module, so no install is needed)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.app.cli", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------------------- groups
def test_groups_match_the_registries():
    from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution

    assert options("backend") == set(backends.REGISTRY)
    assert options("predictor") == set(PREDICTOR_NAMES)
    assert options("regressor") == set(REGRESSORS)
    assert options("encoding") == set(PAPER_VARIANTS)
    # plus popnas_v1, a preset of POPNAS
    assert options("search") == {cls.name for cls in (PNAS, POPNAS, RandomSearch, RegularizedEvolution)} | {
        "popnas_v1"}
    assert options("executor") == {"serial", "process", "submitit_local", "submitit_slurm", "dask_local"}
    assert options("experiment") == {"paper", "search", "regressor_ablation", "fidelity_dial", "table_ablation"}


@pytest.mark.parametrize("group", ["backend", "predictor", "regressor", "encoding", "search", "executor"])
def test_every_option_names_itself(group):
    """An option's ``name`` is its file's name, so the config says what it builds."""
    base = {"backend": ["experiment=search"], "predictor": ["experiment=search"],
            "regressor": ["experiment=regressor_ablation"], "encoding": ["experiment=regressor_ablation"],
            "search": ["experiment=search"], "executor": ["experiment=search", "backend=training"]}[group]
    for option in sorted(options(group)):
        cfg = compose_job(*base, f"{group}={option}")
        assert cfg[group].name == option


def test_main_job_is_the_default_and_keeps_its_folder():
    cfg = compose_job(hydra_node=True)
    assert cfg.experiment.name == "paper"
    assert cfg.experiment.run_folder == RunFolder.seed
    assert cfg.experiment.studies[0] == "space_counts"
    # the YAML sets the scale where it differs from the settings' defaults (K = 256 is one)
    settings = PaperSettings.of(OmegaConf.to_container(cfg.experiment.settings))
    assert list(settings.seeds) == list(cfg.experiment.settings.seeds) and settings.searches.K == 256
    assert cfg.hydra.run.dir == "outputs/paper/seed=0"
    assert compose_job("seed=3", hydra_node=True).hydra.run.dir == "outputs/paper/seed=3"
    # the paper pulls in no other group
    unused = ("backend", "executor", "search", "predictor", "regressor", "encoding")
    assert all(cfg[group] is None for group in unused)


def test_other_experiments_get_hash_named_folders():
    cfg = compose_job("experiment=regressor_ablation", "regressor=ridge", hydra_node=True)
    digest = config_hash(job_config(cfg))
    assert cfg.hydra.run.dir == f"outputs/regressor_ablation/{digest}"
    assert cfg.hydra.sweep.dir == "multirun/regressor_ablation"
    assert cfg.hydra.sweep.subdir == digest
    assert cfg.hydra.callbacks.aggregate._target_ == "harness.app.sweep.AggregateCallback"
    other = compose_job("experiment=regressor_ablation", "regressor=nnls", hydra_node=True)
    assert other.hydra.sweep.subdir != digest


def test_config_hash_is_stable_and_leaves_hydra_out():
    plain = job_config(compose_job("experiment=search"))
    with_hydra = job_config(compose_job("experiment=search", hydra_node=True))
    assert "hydra" not in with_hydra
    assert config_hash(plain) == config_hash(with_hydra) == config_hash(dict(reversed(plain.items())))
    assert len(config_hash(plain)) == 12


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("override, key", [
    ("experiment.settingz=1", "settingz"),
    ("experiment.settings.searches.KK=3", "KK"),
])
def test_misspelt_paper_key_fails(override, key):
    with pytest.raises(ConfigCompositionException) as error:
        compose_job(override)
    assert f"Key '{key}' not in" in str(error.value.__cause__)


def test_misspelt_backend_key_fails():
    with pytest.raises(ConfigCompositionException) as error:
        compose_job("experiment=search", "backend.tua=0.5")
    assert isinstance(error.value.__cause__, (ConfigAttributeError, ConfigKeyError))
    assert "Key 'tua' not in 'SurrogateBackendConfig'" in str(error.value.__cause__)


@pytest.mark.parametrize("overrides, key", [
    (("experiment=search", "+backend.tua=0.5"), "backend.tua"),
    (("+experiment.settings.searches.kk=1",), "experiment.settings.searches.kk"),
])
def test_keys_forced_past_the_schema_are_refused(overrides, key):
    """Hydra's ``+key=value`` gets past the schema, not past ``check_keys`` (the command's first step)."""
    cfg = compose_job(*overrides)
    with pytest.raises(ValueError, match=re.escape(f"unknown key(s) ['{key}']")):
        check_keys(cfg)
    check_keys(compose_job("experiment=regressor_ablation", "backend=training", "executor=submitit_slurm"))


@pytest.mark.parametrize("override", ["seed=abc", "experiment.settings.max_blocks=five",
                                      "experiment.run_folder=nowhere"])
def test_wrong_type_fails(override):
    with pytest.raises(ConfigCompositionException) as error:
        compose_job(override)
    assert isinstance(error.value.__cause__, ValidationError)


@pytest.mark.parametrize("overrides", [
    ("backend=training",),                                 # the paper uses no backend group
    ("experiment=search", "executor=dask_local"),          # executors only with the training backend
    ("experiment=search", "search=random", "predictor=mlp"),  # random search has no predictor
])
def test_group_the_experiment_does_not_use_is_refused(overrides):
    with pytest.raises(ConfigCompositionException, match="No match in the defaults list"):
        compose_job(*overrides)


def test_command_names_the_bad_key(tmp_path):
    for overrides, message in [(("experiment=paper", "seed=abc"), "Value 'abc' of type 'str' could not be "
                                "converted to Integer\n    full_key: seed"),
                               (("experiment=paper", "experiment.settingz=1"), "Key 'settingz' not in"),
                               (("experiment=search", "backend.tua=0.5"), "Key 'tua' not in"),
                               (("experiment=search", "+backend.tua=0.5"), "unknown key(s) ['backend.tua']")]:
        result = run_cli(*overrides, cwd=tmp_path)
        assert result.returncode == 1
        assert message in result.stderr
    assert not list(tmp_path.glob("outputs/*/*/tables"))


def test_builders_check_names():
    cfg = structured(compose_job("experiment=search", "search=popnas", "search.time_regressor=ridge"))
    space = build_space(cfg.experiment.space)
    backend = build_backend(cfg.backend, space)
    with pytest.raises(ValueError, match="go together"):
        build_search(cfg.search, cfg.predictor, space, backend, seed=0)
    cfg.search.time_encoding = "nope"
    with pytest.raises(ValueError, match="unknown encoding 'nope'"):
        build_search(cfg.search, cfg.predictor, space, backend, seed=0)
    with pytest.raises(ValueError, match="cannot serve the searches"):
        build_backend(NB201BackendConfig(), space)
    with pytest.raises(ValueError, match="unknown executor kind"):
        with open_executor({"name": "x", "kind": "mpi"}, "."):
            pass


def test_builders_follow_the_config():
    cfg = structured(job_config(compose_job(
        "experiment=search", "search=popnas", "search.K=7", "predictor=lstm", "backend.tau=0.6",
        "search.time_regressor=ridge", "search.time_encoding=reordered", "experiment.space.max_blocks=3")))
    space = build_space(cfg.experiment.space)
    backend = build_backend(cfg.backend, space)
    search = build_search(cfg.search, cfg.predictor, space, backend, seed=4)
    settings = search.settings()
    assert (settings["strategy"], settings["K"], settings["seed"]) == ("popnas", 7, 4)
    assert settings["predictor"] == "lstm"
    assert settings["max_blocks"] == 3 and backend.options()["tau"] == 0.6
    assert "Ridge" in settings["time_regressor"]
    evolution = structured(compose_job("experiment=search", "search=evolution", "search.population_size=20",
                                       "search.sample_size=5"))
    strategy = build_search(evolution.search, None, space, backend, seed=0)
    assert (strategy.population_size, strategy.sample_size) == (20, 5)


def test_paper_settings_reach_run_paper(monkeypatch, tmp_path):
    """The experiment hands run_paper the YAML's settings as typed settings: what the YAML sets, the
    settings' defaults for what it leaves out."""
    calls = []
    monkeypatch.setattr("harness.app.paper.run_paper", lambda *args: calls.append(args) or [])
    cfg = job_config(compose_job("seed=5", "experiment.settings.searches.K=7"))
    run_paper_experiment(structured(cfg), tmp_path)
    (output_dir, studies, settings), = calls
    yaml = OmegaConf.load(CONF / "experiment" / "paper.yaml")
    assert output_dir == tmp_path and studies == list(yaml.studies)
    assert isinstance(settings, PaperSettings)
    assert settings.seed == 5 and settings.searches.K == 7 and settings.searches.max_blocks == 5
    assert settings.seeds == tuple(yaml.settings.seeds) and settings.predictor.name == "mlp-ensemble"
    assert settings.rastrigin.table4_3_repetitions == yaml.settings.rastrigin.table4_3_repetitions
    assert settings.rastrigin.table5_4_repetitions == PaperSettings().rastrigin.table5_4_repetitions
    assert settings.measured_table is None and settings.rastrigin.resolution is None
    assert dict(settings.evolution) == OmegaConf.to_container(yaml.settings.evolution)


@pytest.mark.parametrize("settings, message", [
    ({"searches": {"KK": 3}}, "unknown key experiment.settings.searches.KK"),
    ({"regressors": {"K": 16}}, "unknown key experiment.settings.regressors.K"),
    ({"serches": {}}, "unknown key experiment.settings.serches"),
    ({"searches": {"K": "many"}}, "experiment.settings.searches.K must be an integer, got 'many'"),
    ({"seeds": [0, 1.5]}, "experiment.settings.seeds[1] must be an integer, got 1.5"),
    ({"evolution": {"population": 10}}, "unknown key experiment.settings.evolution.population"),
    ({"nb201": {"searches": {"KK": 3}}}, "unknown key experiment.settings.nb201.searches.KK"),
    ({"predictor": {"name": "mlp", "options": {"epochz": 3}}}, "experiment.settings.predictor: "),
])
def test_paper_settings_name_the_bad_key(settings, message):
    with pytest.raises(ValueError) as info:
        PaperSettings.of(settings)
    assert message in str(info.value)


def test_the_predictor_has_one_shape():
    # the searches' keyword spelling is not a second shape of the settings
    with pytest.raises(ValueError, match="unknown key experiment.settings.predictor.predictor"):
        PaperSettings.of({"predictor": {"predictor": "mlp", "predictor_options": {"epochs": 3}}})


def test_a_misspelt_main_job_setting_fails_before_any_work(tmp_path):
    result = run_cli("experiment.settings.searches.KK=3", cwd=tmp_path)
    assert result.returncode == 1 and "experiment.settings.searches.KK" in result.stderr
    result = run_cli("+experiment.settings.searches.KK=3", cwd=tmp_path)
    assert result.returncode == 1 and "unknown key(s) ['experiment.settings.searches.KK']" in result.stderr
    assert not list(tmp_path.glob("outputs/paper/*/tables"))


@pytest.mark.parametrize("override, error, message", [
    ("experiment.settings.measured_table=/nope.parquet", FileNotFoundError,
     "experiment.settings.measured_table='/nope.parquet' does not exist"),
    ("experiment.settings.seeds=[]", ValueError, "experiment.settings.seeds must be a non-empty list"),
    ("experiment.settings.seeds=[0,-2]", ValueError, "experiment.settings.seeds[1] must be a non-negative"),
    ("seed=-1", ValueError, "seed must be a non-negative integer, got -1"),
    ("+experiment.settings.surrogate.tau=abc", ValueError,
     "experiment.settings.surrogate.tau must be a real number in (0, 1], got 'abc'"),
    ("+experiment.settings.surrogate.tau=1.5", ValueError,
     "experiment.settings.surrogate.tau must be a real number in (0, 1], got 1.5"),
    ("+experiment.settings.surrogate.tau=true", ValueError,
     "experiment.settings.surrogate.tau must be a number, got True"),
    ("+experiment.settings.surrogate.tua=0.5", ValueError, "unknown key experiment.settings.surrogate.tua"),
])
def test_bad_main_job_settings_fail_before_any_work(tmp_path, override, error, message):
    from harness.app.experiments import run_experiment

    cfg = job_config(compose_job(override))
    with pytest.raises(error) as info:
        run_experiment(cfg, tmp_path)
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_measured_table_none_means_surrogate_only(tmp_path):
    from ablations.run import PaperRun

    assert PaperRun(tmp_path, PaperSettings.of({"measured_table": "none"})).measured is None


def test_negative_seed_fails_before_the_search_folder_exists(tmp_path):
    result = run_cli("experiment=search", "seed=-1", cwd=tmp_path)
    assert result.returncode == 1
    assert "seed must be a non-negative integer, got -1" in result.stderr
    assert not list(tmp_path.glob("outputs/search/*/search"))
