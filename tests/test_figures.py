"""The report's figures say what their colours mean."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.figures import draw_predicted_versus_real, predicted_versus_real


def _predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"regressor": name, "step": step, "real": real, "predicted": real * rng.uniform(0.8, 1.2)}
            for name in ("ridge", "nnls") for step in (2, 3, 4) for real in rng.uniform(10, 60, 5)]
    return pd.DataFrame(rows)


def test_predicted_versus_real_has_a_legend_per_step(tmp_path):
    figure = draw_predicted_versus_real(_predictions(), "regressor", "title")
    legend = figure.axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["step 2", "step 3", "step 4"]
    # one colour per step, the same in every panel
    colours = [[tuple(c.get_facecolor()[0]) for c in axes.collections] for axes in figure.axes]
    assert len(set(colours[0])) == 3 and colours[0] == colours[1]
    path = predicted_versus_real(_predictions(), "regressor", tmp_path / "fig.png", "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
