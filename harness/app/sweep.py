"""Sweeps: one folder per job named by the hash of its resolved config, skip-if-done, and the aggregate.

Layout of a sweep folder (``hydra.sweep.dir``, by default ``multirun/<experiment>/``)::

    <hash>/config.yaml        the job's resolved configuration (Hydra's own settings left out)
    <hash>/tables/*.csv       its results (harness.app.experiments)
    <hash>/done               written last and atomically: the job finished
    searches/                 searches shared by the jobs (the regressor ablation's)
    aggregate/<table>.csv     every finished job's results: mean and interval over seeds
    report.md                 the same as Markdown, with the settings all jobs share

``<hash>`` is :func:`config_hash`: the first 12 hex digits of the SHA-256 of
the resolved configuration as canonical JSON. The same configuration always
lands in the same folder, so a re-launched sweep finds the jobs already done
and skips them (:func:`run_once`); a job killed before its ``done`` marker
runs again (and resumes its searches, which checkpoint every step). The hash
covers the configuration, not the code: after changing the code, delete the
job folders (or their ``done`` files) that must run again.

The aggregate (:func:`aggregate`, also the Hydra callback
:class:`AggregateCallback` and the command ``python -m harness.app.sweep
aggregate <dir>``) groups the jobs by every setting that varies across them
except ``seed``, and reports per group and metric the mean over seeds with a
two-sided Student-t confidence interval, ``mean +- t(1 - a/2, n - 1) * s /
sqrt(n)`` (``s`` the sample standard deviation of the ``n`` seeds): seeds are
independent replicates, and with the 3 to 10 seeds a sweep runs a bootstrap
interval would be too narrow. One seed gives no interval.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from harness.metrics import mean_interval

# locked lives in harness.store (the store locks its compactions); sweep callers import it from here
from harness.store import atomic_write_frame, atomic_write_text, locked  # noqa: F401

log = logging.getLogger(__name__)

#: Hex digits of the config hash that name a job folder (48 bits: collisions are negligible).
HASH_LENGTH = 12

#: A job folder's resolved configuration.
CONFIG_FILE = "config.yaml"

#: A job folder's completion marker.
DONE_FILE = "done"

#: Label of a setting a job does not have (e.g. ``search.time_limit`` of a PNAS job).
ABSENT = "n/a"


# ---------------------------------------------------------------------------- job configs and folders
def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved configuration of a job as plain data, Hydra's own ``hydra`` node left out."""
    keys = [key for key in cfg if key != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True,
                                  throw_on_missing=True, enum_to_str=True)


def config_hash(config: Mapping[str, Any]) -> str:
    """The first :data:`HASH_LENGTH` hex digits of the SHA-256 of ``config`` as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _resolve_config_hash(*, _root_: DictConfig) -> str:
    return config_hash(job_config(_root_))


def _resolve_run_folder(*, _root_: DictConfig) -> str:
    # the experiment says how its single runs are named (harness.app.config.RunFolder)
    if job_config(_root_)["experiment"]["run_folder"] == "seed":
        return f"seed={_root_.seed}"
    return _resolve_config_hash(_root_=_root_)


def register_resolvers() -> None:
    """Register ``${harness.config_hash:}`` and ``${harness.run_folder:}``, which name job folders."""
    for name, resolver in (("harness.config_hash", _resolve_config_hash),
                           ("harness.run_folder", _resolve_run_folder)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def is_done(folder: str | Path) -> bool:
    """Whether ``folder`` holds a finished job."""
    return (Path(folder) / DONE_FILE).exists()


def run_once(folder: str | Path, config: Mapping[str, Any], work: Callable[[], None],
             skip_done: bool = True) -> bool:
    """Run ``work`` for the job ``config`` in ``folder`` unless it is done there; whether it ran.

    ``config.yaml`` is written first, so an unfinished folder still says
    what it holds; the ``done`` marker (with the config hash) is written
    last. With ``skip_done=False`` the job runs again whatever the marker
    says (the main job's ``seed=<n>`` folder, rewritten by every run).
    """
    folder = Path(folder)
    digest = config_hash(config)
    marker = folder / DONE_FILE
    if skip_done and marker.exists():
        found = json.loads(marker.read_text()).get("config_hash")
        if found != digest:
            raise ValueError(f"{folder} is marked done for the configuration {found}, not this job's "
                             f"{digest}; give this job another folder")
        log.info("%s is done already; skipping it", folder)
        return False
    marker.unlink(missing_ok=True)  # a job run again is unfinished until its work returns
    atomic_write_text(folder / CONFIG_FILE, yaml.safe_dump(dict(config), sort_keys=True))
    work()
    atomic_write_text(marker, json.dumps({"config_hash": digest}) + "\n")
    return True


# ---------------------------------------------------------------------------- aggregate
@dataclass(frozen=True)
class Job:
    """A finished job: its folder and resolved configuration."""

    folder: Path
    config: dict[str, Any]


def finished_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every finished job directly under ``sweep_dir``, in folder-name order."""
    jobs = []
    for marker in sorted(Path(sweep_dir).glob(f"*/{DONE_FILE}")):
        config = yaml.safe_load((marker.parent / CONFIG_FILE).read_text())
        jobs.append(Job(marker.parent, config))
    return jobs


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to leaf values; lists and empty mappings stay whole (as JSON text)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, (list, dict)):
            flat[name] = json.dumps(value, sort_keys=True)
        else:
            flat[name] = value
    return flat


def _column(values: list[Any]) -> list[Any]:
    """A setting's values across jobs as one sortable type: numbers stay numbers, the rest text."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not ABSENT):
        return [np.nan if v is ABSENT else v for v in values]
    return [v if isinstance(v, str) else json.dumps(v) for v in values]


def _settings(jobs: list[Job]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per job (rows), the settings that vary across jobs except ``seed``; and those all jobs share."""
    flat = [_flatten({k: v for k, v in job.config.items() if k != "seed"}) for job in jobs]
    keys = sorted(set().union(*flat))
    varying = [k for k in keys if len({json.dumps(f.get(k, ABSENT), sort_keys=True) for f in flat}) > 1]
    shared = {k: flat[0][k] for k in keys if k not in varying}
    columns = {k: _column([f.get(k, ABSENT) for f in flat]) for k in varying}
    return pd.DataFrame(columns, index=range(len(jobs))), shared


def _experiment(jobs: list[Job]):
    """The name of the experiment the jobs ran, and its ``harness.app.experiments.Experiment``."""
    from harness.app.experiments import EXPERIMENTS

    names = sorted({job.config["experiment"]["name"] for job in jobs})
    if len(names) > 1:
        raise ValueError(f"the folder holds jobs of several experiments {names}; aggregate one sweep "
                         "folder per experiment")
    name = names[0]
    if name not in EXPERIMENTS or not EXPERIMENTS[name].results:
        raise ValueError(f"experiment {name!r} declares no result table to aggregate")
    return name, EXPERIMENTS[name]


def aggregate(sweep_dir: str | Path, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Gather the finished jobs of ``sweep_dir``; write ``aggregate/<table>.csv`` and ``report.md``.

    Each result table's rows are grouped by the settings that vary across
    jobs (``seed`` aside) and the table's key columns; every value column
    (of those a job's table has) becomes rows of ``metric`` with ``mean``, ``std``, ``ci_low``,
    ``ci_high`` (the :func:`mean_interval` at ``confidence``), ``n_seeds``
    and ``seeds``; then the experiment's own ``summarise`` step runs on them,
    if it has one. Returns the tables by name.
    """
    sweep_dir = Path(sweep_dir)
    jobs = finished_jobs(sweep_dir)
    if not jobs:
        raise ValueError(f"{sweep_dir} holds no finished job (no */{DONE_FILE})")
    experiment, declared = _experiment(jobs)
    tables = declared.results
    settings, shared = _settings(jobs)
    results = {}
    for table in tables:
        frames = []
        for index, job in enumerate(jobs):
            frame = pd.read_csv(job.folder / "tables" / f"{table.name}.csv")
            long = frame.melt(id_vars=list(table.keys),
                              value_vars=[value for value in table.values if value in frame.columns],
                              var_name="metric", value_name="value")
            frames.append(long.assign(seed=job.config["seed"],
                                      **{k: settings.at[index, k] for k in settings.columns}))
        data = pd.concat(frames, ignore_index=True)
        groups = [*settings.columns, *table.keys, "metric"]
        rows = []
        for key, part in data.groupby(groups, sort=True, dropna=False):
            mean, std, low, high = mean_interval(part["value"].to_numpy(), confidence)
            seeds = sorted(part["seed"].unique().tolist())
            rows.append({**dict(zip(groups, key)), "mean": mean, "std": std, "ci_low": low,
                         "ci_high": high, "n_seeds": len(seeds), "seeds": " ".join(map(str, seeds))})
        results[table.name] = pd.DataFrame(rows)
        atomic_write_frame(results[table.name], sweep_dir / "aggregate" / f"{table.name}.csv")
    if declared.summarise is not None:
        declared.summarise(sweep_dir, results)
    atomic_write_text(sweep_dir / "report.md",
                      _report(sweep_dir, experiment, jobs, shared, results, confidence))
    log.info("aggregated %d jobs of %s into %s", len(jobs), sweep_dir, sweep_dir / "report.md")
    return results


def _report(sweep_dir: Path, experiment: str, jobs: list[Job], shared: dict[str, Any],
            results: dict[str, pd.DataFrame], confidence: float) -> str:
    from ablations.report import markdown_table

    seeds = sorted({job.config["seed"] for job in jobs})
    lines = [
        f"# Sweep `{experiment}`: {len(jobs)} finished jobs",
        "",
        f"Folder `{sweep_dir}`; seeds {', '.join(map(str, seeds))}. Each value is the mean over seeds "
        f"with a {confidence:.0%} Student-t confidence interval (`ci_low`, `ci_high`); "
        "`aggregate/<table>.csv` holds the same with the standard deviation.",
        "",
    ]
    for name, frame in results.items():
        lines += [f"## `{name}`", "", markdown_table(frame.drop(columns=["std", "seeds"])), ""]
    given = {k: v for k, v in shared.items() if v is not None}
    settings = pd.DataFrame({"setting": list(given),
                             "value": [v if isinstance(v, str) else json.dumps(v) for v in given.values()]})
    lines += ["## Settings every job shares", "", "Null settings (the components' defaults) left out.", "",
              markdown_table(settings), ""]
    return "\n".join(lines)


class AggregateCallback(Callback):
    """Hydra callback: :func:`aggregate` the sweep folder when a multirun ends."""

    def __init__(self, confidence: float = 0.95) -> None:
        self.confidence = confidence

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Aggregate ``hydra.sweep.dir``."""
        aggregate(Path(config.hydra.sweep.dir), self.confidence)


# ---------------------------------------------------------------------------- commands
def _add_aggregate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder, e.g. multirun/regressor_ablation")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")


def aggregate_main(argv: Sequence[str] | None = None) -> None:
    """``popnas-harness-aggregate <sweep dir>``: aggregate a sweep folder."""
    parser = argparse.ArgumentParser(prog="popnas-harness-aggregate", description=aggregate.__doc__)
    _add_aggregate_arguments(parser)
    args = parser.parse_args(argv)
    _aggregate_command(args)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m harness.app.sweep aggregate <sweep dir>``."""
    parser = argparse.ArgumentParser(prog="python -m harness.app.sweep")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_aggregate_arguments(commands.add_parser("aggregate", help="aggregate a sweep folder"))
    _aggregate_command(parser.parse_args(argv))


def _aggregate_command(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.sweep_dir.is_dir():
        raise SystemExit(f"no such sweep folder: {args.sweep_dir}")
    try:
        aggregate(args.sweep_dir, args.confidence)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(args.sweep_dir / "report.md")


# at import: every process that runs a job (a launcher's worker unpickling the task) imports this
# module before Hydra names the job's folder
register_resolvers()

if __name__ == "__main__":
    main()
