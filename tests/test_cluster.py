"""Past one machine: cluster executors inside a search, and Hydra launchers for sweeps (all run locally)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends.executors import SubmititExecutor, open_executor
from harness.app.config import plain, structured
from harness.app.experiments import build_backend, build_space
from harness.app.sweep import finished_jobs, job_config
from tests.conftest import REPO_ROOT
from tests.test_config import compose_job

CELLS = ["(-2,sep3x3,-1,identity)", "(-1,maxpool3x3,-2,dilconv3x3)"]
# tiny children on digits: F=4, N=1, one epoch on 128 images, one torch thread per task
TINY_TRAINING = ("backend.filters=4", "backend.cells_per_stage=1", "backend.max_epochs=1",
                 "backend.train_size=128", "backend.val_size=64", "backend.device=cpu",
                 "backend.threads_per_worker=1", "experiment.space.max_blocks=1")


# ---------------------------------------------------------------------------- the submitit adapter
class FakeJob:
    """A submitit-like job that finishes when its call has run in a thread."""

    def __init__(self, fn, args):
        self.cancelled = False
        self._outcome = None
        self._thread = threading.Thread(target=self._run, args=(fn, args))
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._outcome = ("result", fn(*args))
        except Exception as exc:  # noqa: BLE001 - stored like submitit stores a failed job's error
            self._outcome = ("error", exc)

    def done(self):
        return not self._thread.is_alive()

    def result(self):
        kind, value = self._outcome
        if kind == "error":
            raise value
        return value

    def cancel(self, check=True):
        self.cancelled = True


class FakeSubmitit:
    """Counts the jobs running at once."""

    def __init__(self):
        self.jobs, self.peak, self._lock = [], 0, threading.Lock()

    def submit(self, fn, *args):
        job = FakeJob(fn, args)
        with self._lock:
            self.jobs.append(job)
            self.peak = max(self.peak, sum(not j.done() for j in self.jobs))
        return job


def slow_square(x):
    time.sleep(0.05)
    return x * x


def test_submitit_adapter_is_a_bounded_executor():
    fake = FakeSubmitit()
    pool = SubmititExecutor(fake, max_running=2, poll_interval=0.01)
    futures = [pool.submit(slow_square, x) for x in range(6)]
    assert [f.result(timeout=10) for f in futures] == [x * x for x in range(6)]
    assert fake.peak <= 2 and len(fake.jobs) == 6
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=10)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(slow_square, 1)


def test_submitit_adapter_cancels_jobs_on_shutdown():
    fake = FakeSubmitit()
    pool = SubmititExecutor(fake, max_running=1, poll_interval=0.01)
    futures = [pool.submit(time.sleep, 0.3) for _ in range(3)]
    time.sleep(0.1)  # the first is running, the others wait
    pool.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in futures)
    assert [job.cancelled for job in fake.jobs] == [True]
    with pytest.raises(CancelledError):
        futures[0].result()
    with pytest.raises(ValueError, match="max_running"):
        SubmititExecutor(fake, max_running=0)


# ---------------------------------------------------------------------------- executors inside a search
def train_on(executor: str, tmp_path: Path, *extra: str) -> pd.DataFrame:
    """The tiny children of CELLS trained through ``executor`` (configured as the command would)."""
    config = job_config(compose_job("experiment=search", "backend=training", f"executor={executor}",
                                    *TINY_TRAINING, *extra))
    job = structured(config)
    space = build_space(job.experiment.space)
    with open_executor(plain(job.executor), tmp_path / executor) as options:
        backend = build_backend(job.backend, space, **options)
        try:
            return backend.evaluate(space.parse_many(CELLS), seed=0)
        finally:
            backend.close()


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: the same cells trained one after another in this process."""
    return train_on("serial", tmp_path_factory.mktemp("serial"))


@pytest.mark.parametrize("executor, extra", [
    ("submitit_local", ("executor.max_running=2", "executor.poll_interval=0.2")),
    ("dask_local", ("executor.n_workers=1",)),
])
def test_cluster_executor_trains_like_serial(executor, extra, serial, tmp_path):
    result = train_on(executor, tmp_path, *extra)
    assert result["cell"].tolist() == serial["cell"].tolist()
    # CPU training is deterministic and seeded per cell: the worker does not change the numbers
    np.testing.assert_array_equal(result["accuracy"], serial["accuracy"])
    np.testing.assert_array_equal(result["val_loss"], serial["val_loss"])
    assert (result["accuracy"] > 0).all() and (result["train_time"] > 0).all()
    if executor == "submitit_local":  # each cell ran as its own job, logged in the job folder
        assert len(list((tmp_path / executor / "submitit").glob("*_result.pkl"))) == len(CELLS)


# ---------------------------------------------------------------------------- launchers for sweeps
@pytest.mark.parametrize("launcher", ["submitit_local", "joblib_local"])
def test_sweep_through_a_launcher(launcher, tmp_path):
    """Two tiny jobs (random one-block cells on the surrogate) launched as separate processes."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    overrides = ["-m", f"hydra/launcher={launcher}", "experiment=search", "search=random",
                 "experiment.space.max_blocks=1", "seed=0,1"]
    if launcher == "submitit_local":
        overrides += ["hydra.launcher.timeout_min=5", "hydra.launcher.cpus_per_task=1"]
    result = subprocess.run([sys.executable, "-m", "harness.app.cli", *overrides], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "multirun" / "search"
    assert sorted(job.config["seed"] for job in finished_jobs(sweep)) == [0, 1]
    summary = pd.read_csv(sweep / "aggregate" / "summary.csv")
    assert summary["n_seeds"].tolist() == [2, 2, 2]  # models_trained, best_accuracy, search_time
    assert summary.loc[summary["metric"] == "models_trained", "mean"].item() == 136
