"""The ``popnas-harness`` command: a thin Hydra entry point.

All work happens in plain functions (``ablations.paper.run_paper`` ...), so
notebooks use the same code without Hydra.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@hydra.main(version_base=None, config_path="pkg://conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Run the configured experiment into Hydra's output folder."""
    from ablations.paper import run_paper

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    settings = OmegaConf.to_container(cfg.experiment.settings, resolve=True)
    settings["seed"] = cfg.seed
    sections = run_paper(output_dir, list(cfg.experiment.studies), settings)
    log.info("wrote %d tables and %s", len(sections), output_dir / "report.md")


if __name__ == "__main__":
    main()
