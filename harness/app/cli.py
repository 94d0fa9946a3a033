"""The ``popnas-harness`` command: a thin Hydra entry point.

The configuration is composed from ``conf/`` against the schemas of
:mod:`harness.app.config`; the work happens in plain functions
(:func:`harness.app.experiments.run_experiment`, ``harness.app.paper.run_paper``
...), so notebooks use the same code without Hydra. Job folders and
skip-if-done are :mod:`harness.app.sweep`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

# importing these registers the schemas (harness.app.config) and the resolvers that name job folders
# (harness.app.sweep) before @hydra.main composes anything
from harness.app.config import RunFolder, check_keys
from harness.app.sweep import job_config, run_once

log = logging.getLogger(__name__)


@hydra.main(version_base=None, config_path="pkg://conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Run the configured experiment into its job folder; a finished hash-named job is skipped."""
    from harness.app.experiments import run_experiment

    check_keys(cfg)
    hydra_config = HydraConfig.get()
    output_dir = Path(hydra_config.runtime.output_dir)
    config = job_config(cfg)
    # a hash-named folder holds exactly this config, so "done" there means this job is done
    by_hash = hydra_config.mode == RunMode.MULTIRUN or cfg.experiment.run_folder == RunFolder.hash
    if run_once(output_dir, config, lambda: run_experiment(config, output_dir), skip_done=by_hash):
        log.info("%s: done", output_dir)


if __name__ == "__main__":
    main()
