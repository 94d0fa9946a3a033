"""Sweeps: hash-named job folders, skip-if-done, shared searches, and the aggregate over seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from harness.app.experiments import run_experiment
from harness.app.sweep import (
    CONFIG_FILE,
    DONE_FILE,
    aggregate,
    aggregate_main,
    config_hash,
    finished_jobs,
    job_config,
    locked,
    main,
    mean_interval,
    run_once,
)
from tests.conftest import REPO_ROOT
from tests.test_config import compose_job

# a PNAS run of two steps with a plain MLP: seconds on the surrogate
TINY = ("experiment.space.max_blocks=2", "search.K=4", "predictor=mlp")


def run_sweep(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """``popnas-harness -m`` with ``overrides`` in ``cwd``."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.app.cli", "-m", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------- run_once
def test_run_once_writes_config_then_marker_and_skips_when_done(tmp_path):
    config = {"seed": 1, "experiment": {"name": "x"}}
    calls = []

    def work():
        assert (tmp_path / CONFIG_FILE).exists() and not (tmp_path / DONE_FILE).exists()
        calls.append(1)

    assert run_once(tmp_path, config, work)
    assert yaml.safe_load((tmp_path / CONFIG_FILE).read_text()) == config
    assert json.loads((tmp_path / DONE_FILE).read_text()) == {"config_hash": config_hash(config)}
    assert not run_once(tmp_path, config, work)
    assert calls == [1]
    # the main job's seed folder runs every time
    assert run_once(tmp_path, config, work, skip_done=False)
    assert calls == [1, 1]
    with pytest.raises(ValueError, match="marked done for the configuration"):
        run_once(tmp_path, {**config, "seed": 2}, work)


def test_a_job_that_fails_leaves_no_marker_and_runs_again(tmp_path):
    config = {"seed": 0}

    def fail():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_once(tmp_path, config, fail)
    assert (tmp_path / CONFIG_FILE).exists() and not (tmp_path / DONE_FILE).exists()
    calls = []
    assert run_once(tmp_path, config, lambda: calls.append(1))
    assert calls == [1]


def test_lock_makes_jobs_wait_for_each_other(tmp_path):
    """Jobs sharing a search take turns: the second enters only after the first left."""
    events = []

    def job(name: str) -> None:
        with locked(tmp_path / "searches" / "s.lock"):
            events.append(f"{name} in")
            time.sleep(0.2)
            events.append(f"{name} out")

    threads = [threading.Thread(target=job, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


# ---------------------------------------------------------------------------- aggregate
def test_mean_interval_is_the_student_t_interval():
    mean, std, low, high = mean_interval([1.0, 2.0, 3.0, 6.0], 0.95)
    half = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 6], ddof=1) / 2
    assert mean == 3.0 and std == pytest.approx(np.std([1, 2, 3, 6], ddof=1))
    assert (low, high) == pytest.approx((3.0 - half, 3.0 + half))
    assert np.isnan(mean_interval([4.0])[2])
    with pytest.raises(ValueError, match="confidence"):
        mean_interval([1.0, 2.0], 1.5)


def fake_job(sweep: Path, seed: int, regressor: str, errors: dict[int, float], **extra) -> None:
    """A finished regressor-ablation job folder with a relative-error table."""
    config = {"seed": seed, "experiment": {"name": "regressor_ablation", "run_folder": "hash"},
              "regressor": {"name": regressor, "options": {}}, "backend": {"name": "surrogate", "tau": None},
              **extra}
    folder = sweep / config_hash(config)
    table = pd.DataFrame([{"regressor": regressor, "variant": "standard", "evaluation": "proper", "blocks": b,
                           "mean_relative_error": e, "n": 4} for b, e in errors.items()])
    run_once(folder, config, lambda: (folder / "tables").mkdir() or table.to_csv(
        folder / "tables" / "relative_error.csv", index=False))


def test_aggregate_groups_by_the_varying_settings_over_seeds(tmp_path):
    for seed, (a, b) in enumerate([(0.1, 0.2), (0.3, 0.2), (0.2, 0.5)]):
        fake_job(tmp_path, seed, "ridge", {2: a, 3: b})
        fake_job(tmp_path, seed, "nnls", {2: a / 10, 3: b / 10})
    (tmp_path / "unfinished").mkdir()  # no done marker: ignored
    tables = aggregate(tmp_path)
    table = tables["relative_error"]
    assert list(table.columns) == ["regressor.name", "evaluation", "blocks", "metric", "mean", "std",
                                   "ci_low", "ci_high", "n_seeds", "seeds"]
    assert len(table) == 4 and set(table["n_seeds"]) == {3} and set(table["seeds"]) == {"0 1 2"}
    row = table[(table["regressor.name"] == "ridge") & (table["blocks"] == 2)].iloc[0]
    mean, std, low, high = mean_interval([0.1, 0.3, 0.2])
    assert (row["mean"], row["std"], row["ci_low"], row["ci_high"]) == pytest.approx((mean, std, low, high))
    assert pd.read_csv(tmp_path / "aggregate" / "relative_error.csv").equals(table)
    report = (tmp_path / "report.md").read_text()
    assert "# Sweep `regressor_ablation`: 6 finished jobs" in report
    assert "| regressor.name | evaluation | blocks | metric | mean | ci_low | ci_high | n_seeds |" in report
    # settings all jobs share are listed once; null ones (component defaults) are left out
    assert "| backend.name | surrogate |" in report and "backend.tau" not in report


def test_aggregate_keeps_numbers_numeric_and_marks_absent_settings(tmp_path):
    fake_job(tmp_path, 0, "ridge", {2: 0.1}, search={"name": "pnas", "K": 8})
    fake_job(tmp_path, 0, "ridge", {2: 0.2}, search={"name": "popnas", "K": 16, "time_limit": 3.0})
    table = aggregate(tmp_path)["relative_error"]
    assert table["search.K"].tolist() == [8, 16]
    assert table["search.time_limit"].isna().tolist() == [True, False]
    assert table["search.name"].tolist() == ["pnas", "popnas"]


def test_aggregate_refuses_what_it_cannot_aggregate(tmp_path):
    with pytest.raises(ValueError, match="no finished job"):
        aggregate(tmp_path)
    paper = {"seed": 0, "experiment": {"name": "paper"}}
    run_once(tmp_path / "paper-job", paper, lambda: None)
    with pytest.raises(ValueError, match="experiment 'paper' declares no result table"):
        aggregate(tmp_path)
    fake_job(tmp_path, 0, "ridge", {2: 0.1})
    with pytest.raises(ValueError, match="several experiments"):
        aggregate(tmp_path)


def test_aggregate_commands(tmp_path, capsys):
    fake_job(tmp_path, 0, "ridge", {2: 0.1})
    fake_job(tmp_path, 1, "ridge", {2: 0.3})
    main(["aggregate", str(tmp_path)])
    assert capsys.readouterr().out.strip() == str(tmp_path / "report.md")
    aggregate_main([str(tmp_path), "--confidence", "0.9"])
    assert "90% Student-t" in (tmp_path / "report.md").read_text()
    with pytest.raises(SystemExit, match="no such sweep folder"):
        aggregate_main([str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="no finished job"):
        aggregate_main([str(tmp_path / "aggregate")])


# ---------------------------------------------------------------------------- experiments end to end
def test_same_seed_gives_the_same_tables(tmp_path):
    config = job_config(compose_job("experiment=regressor_ablation", "regressor=nnls",
                                    "encoding=dynamic_without_inputs", "seed=3", *TINY))
    tables = []
    for run in ("a", "b"):
        folder = tmp_path / run / "job"
        run_experiment(config, folder)
        assert len(list((tmp_path / run / "searches").glob("pnas-seed3-*/progress.json"))) == 1
        tables.append((folder / "tables" / "relative_error.csv").read_bytes())
    assert tables[0] == tables[1]
    table = pd.read_csv(tmp_path / "a" / "job" / "tables" / "relative_error.csv")
    assert set(table["regressor"]) == {"nnls"} and set(table["variant"]) == {"dynamic_without_inputs"}
    assert sorted(table["evaluation"].unique()) == ["progressive", "proper"] and set(table["blocks"]) == {2}


def test_multirun_sweep_skips_done_jobs_and_aggregates(tmp_path):
    sweep = tmp_path / "multirun" / "regressor_ablation"
    first = run_sweep("experiment=regressor_ablation", "regressor=ridge,block_sum", "seed=0,1", *TINY,
                      cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    jobs = finished_jobs(sweep)
    assert len(jobs) == 4
    for job in jobs:  # each folder is named by the hash of the config saved in it
        assert job.folder.name == config_hash(job.config)
    # one search per seed, shared by both regressors
    assert len(list((sweep / "searches").glob("pnas-seed*/progress.json"))) == 2
    table = pd.read_csv(sweep / "aggregate" / "relative_error.csv")  # written by the callback
    assert set(table["regressor.name"]) == {"ridge", "block_sum"} and set(table["n_seeds"]) == {2}
    stamps = {job.folder: (job.folder / "tables" / "relative_error.csv").stat().st_mtime_ns for job in jobs}

    second = run_sweep("experiment=regressor_ablation", "regressor=ridge,block_sum", "seed=0,1,2", *TINY,
                       cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("is done already; skipping it") == 4
    assert {f: (f / "tables" / "relative_error.csv").stat().st_mtime_ns for f in stamps} == stamps
    assert len(finished_jobs(sweep)) == 6
    assert set(pd.read_csv(sweep / "aggregate" / "relative_error.csv")["n_seeds"]) == {3}
