"""Speed of the fidelity_dial study (issue 15: the full sweep, 6 taus x 4 methods x 20 seeds at B = 5,
K = 256, within 30 minutes on a 2-core machine through the joblib launcher).

One run per method at full scale; ``extra_info`` extrapolates the sweep: the method's run time times
its 6 x 20 jobs, the four methods summed and divided by the launcher's two workers (Hydra's per-job
start-up, about a second, is not in it). Each run uses one torch thread, as a sweep job does (joblib's
loky workers get ``cpu_count // n_jobs`` threads). On NAS-Bench-201 (K = 32) the same.
"""

from __future__ import annotations

import pytest
import torch

from ablations.fidelity_dial import METHODS, TAUS, fidelity_run

#: Jobs of the full sweep per method, and the joblib launcher's workers on this machine.
SEEDS, WORKERS = 20, 2

SETTINGS = {"surrogate": {"K": 256}, "nb201": {"K": 32}}


@pytest.mark.parametrize("landscape", sorted(SETTINGS))
@pytest.mark.parametrize("method", METHODS)
def test_one_fidelity_run_at_sweep_scale(benchmark, landscape, method):
    fidelity_run(method, 0.75, 0, landscape=landscape, K=4)  # imports, the rank sample's cache
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        row = benchmark.pedantic(fidelity_run, args=(method, 0.75, 0), kwargs={"landscape": landscape,
                                 **SETTINGS[landscape]}, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)
    assert row["cells_trained"] > 0
    seconds = benchmark.stats.stats.min
    benchmark.extra_info["cells_trained"] = row["cells_trained"]
    benchmark.extra_info["sweep_seconds_of_this_method"] = seconds * len(TAUS) * SEEDS / WORKERS
