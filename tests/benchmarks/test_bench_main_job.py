"""The main job's runtime (issue: at most 10 minutes on a 2-core machine), measured as a benchmark."""

from __future__ import annotations

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import harness.app.config  # noqa: F401 - registers the schemas the composition needs
from harness.app.paper import run_paper


def test_main_job_default_settings(benchmark, tmp_path):
    with initialize_config_module(config_module="conf", version_base=None):
        cfg = compose(config_name="config", overrides=["experiment=paper"])
    settings = OmegaConf.to_container(cfg.experiment.settings, resolve=True)
    settings["seed"] = cfg.seed
    studies = list(cfg.experiment.studies)
    sections = benchmark.pedantic(run_paper, args=(tmp_path, studies, settings), rounds=1, iterations=1)
    assert (tmp_path / "report.md").exists()
    benchmark.extra_info["tables"] = len(sections)
