"""Study ``thesis_kendall_fidelity``: how well do short training runs rank cells? (thesis chapter 5)

The thesis trains the same architectures for a reduced number of epochs
(partially trained groups, PTG) and for the full number (the fully trained
group, FTG, an independent run), and measures Kendall's tau-b between the
two rankings with 800 bootstrap resamples, on raw accuracies and after
rounding them to whole percents. Re-running the full training with another
seed (NAS-Bench-101's 108-epoch PTG against the FTG) gives the practical
ceiling: 0.89 raw, 0.94 rounded, far from 1.

Here a backend (default: the noisy-Rastrigin surrogate, whose fidelity model
is anchored on those NAS-Bench-101 figures) evaluates random cells of every
block count (``cells_per_block_count`` each, fewer where the space has fewer
distinct cells) at each fidelity with one seed, and at full fidelity with
another. Mixing block counts matches the population over which the
surrogate's expected tau holds; cells of one size only agree less, since
their clean accuracies spread less.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

import backends
from ablations import paper_numbers
from ablations.figures import new_figure, save_figure
from ablations.report import TableSection, markdown_table
from harness.evaluator import Backend
from harness.metrics import bootstrap_correlation, correlation_table, round_to_percent
from harness.noise import kendall_tau
from harness.space import CellBatch, CellSpace
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

#: Fractions of full training that the default epoch grid samples.
DEFAULT_FIDELITY_FRACTIONS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0)

#: Rounding variants: the accuracies as measured, and rounded to whole percents.
ROUNDINGS: tuple[str, ...] = ("raw", "percent")


def default_epochs(max_epochs: int) -> tuple[int, ...]:
    """Epoch counts at :data:`DEFAULT_FIDELITY_FRACTIONS` of ``max_epochs`` (20 gives 1, 2, 5, 10, 20)."""
    return tuple(sorted({max(1, round(max_epochs * f)) for f in DEFAULT_FIDELITY_FRACTIONS}))


def _setup(
    backend: Backend | None,
    epochs: Sequence[int] | None,
    cells_per_block_count: int,
    blocks: Sequence[int] | None,
    seed: int,
) -> tuple[Backend, tuple[int, ...], CellBatch]:
    """The backend (default surrogate), the checked epoch grid ending at full fidelity, and the cells."""
    backend = backends.make("surrogate") if backend is None else backend
    grid = default_epochs(backend.max_epochs) if epochs is None else tuple(sorted(set(epochs)))
    grid = tuple(sorted(set(grid) | {backend.max_epochs}))
    for e in grid:
        backend.check_epochs(e)
    check_integer("cells_per_block_count", cells_per_block_count, minimum=3)
    space = backend.space
    counts = range(1, space.max_blocks + 1) if blocks is None else blocks
    cells = CellBatch.concat([
        space.sample(min(cells_per_block_count, space.num_unique_cells(b)), b, seed=[seed, b])
        for b in counts
    ])
    return backend, grid, cells


def _runs(backend: Backend, cells: CellBatch, epochs: Sequence[int], seed: int) -> dict[int, np.ndarray]:
    """Measured accuracy of ``cells`` at each of ``epochs`` with ``seed``."""
    return {e: backend.evaluate(cells, epochs=e, seed=seed)["accuracy"].to_numpy() for e in epochs}


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; choose one of {ROUNDINGS}")


def _rounded(accuracy: np.ndarray, rounding: str) -> np.ndarray:
    return round_to_percent(accuracy) if rounding == "percent" else accuracy


def thesis_kendall_fidelity(
    backend: Backend | None = None,
    epochs: Sequence[int] | None = None,
    cells_per_block_count: int = 200,
    blocks: Sequence[int] | None = None,
    n_boot: int = 800,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Kendall tau-b of each fidelity against an independent full-fidelity run, with bootstrap errors.

    One row per (epochs, rounding). Each fidelity in ``epochs`` (default
    :func:`default_epochs`; full fidelity is always added) is one run with
    ``seed``; the reference is a full-fidelity run with ``seed + 1``, so the
    full-fidelity row (``comparison == "ceiling"``) is the re-training
    ceiling. ``blocks`` lists the block counts of the cells (default all).
    Columns: ``epochs``, ``full_epochs``, ``comparison``, ``rounding``, the
    :class:`~harness.metrics.CorrelationEstimate` fields (``value`` is tau-b),
    and ``expected_tau``: the backend's population tau to full fidelity
    (``expected_tau_to_full``) for raw accuracies, NaN for rounded ones or
    backends without it.
    """
    backend, grid, cells = _setup(backend, epochs, cells_per_block_count, blocks, seed)
    full = backend.max_epochs
    expected = getattr(backend, "expected_tau_to_full", None)
    runs = _runs(backend, cells, grid, seed)
    reference = _runs(backend, cells, [full], seed + 1)[full]
    rows = []
    for rounding in ROUNDINGS:
        for e, accuracy in runs.items():
            estimate = bootstrap_correlation(
                _rounded(accuracy, rounding), _rounded(reference, rounding),
                method="kendall", n_boot=n_boot, confidence=confidence, seed=seed,
            )
            labels = {
                "epochs": e,
                "full_epochs": full,
                "comparison": "ceiling" if e == full else "reduced",
                "rounding": rounding,
                "expected_tau": expected(e) if expected is not None and rounding == "raw" else np.nan,
            }
            rows.append((labels, estimate))
    return correlation_table(rows)


def fidelity_tau_matrix(
    backend: Backend | None = None,
    epochs: Sequence[int] | None = None,
    cells_per_block_count: int = 200,
    blocks: Sequence[int] | None = None,
    rounding: str = "percent",
    seed: int = 0,
) -> pd.DataFrame:
    """Kendall tau-b between every pair of fidelities, two independent runs (the thesis' Fig. 5.7 layout).

    Rows are fidelities of a run with ``seed`` (index ``epochs_a``), columns
    fidelities of a run with ``seed + 1`` (``epochs_b``), so the diagonal is
    the re-run agreement at each fidelity. Values are tau-b on the whole
    sample (use :func:`thesis_kendall_fidelity` for bootstrap errors).
    """
    _check_rounding(rounding)
    backend, grid, cells = _setup(backend, epochs, cells_per_block_count, blocks, seed)
    run_a = {e: _rounded(a, rounding) for e, a in _runs(backend, cells, grid, seed).items()}
    run_b = {e: _rounded(b, rounding) for e, b in _runs(backend, cells, grid, seed + 1).items()}
    return pd.DataFrame(
        [[kendall_tau(run_a[a], run_b[b]) for b in grid] for a in grid],
        index=pd.Index(grid, name="epochs_a"),
        columns=pd.Index(grid, name="epochs_b"),
    )


def plot_fidelity_heatmap(matrix: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Draw ``matrix`` (from :func:`fidelity_tau_matrix`) as an annotated heatmap; writes a PNG atomically.

    Uses matplotlib's Agg canvas directly (no pyplot, so no global backend
    switch in the caller's session). Returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"the heatmap is written as PNG; got a path ending in {path.suffix!r}")
    values = matrix.to_numpy(dtype=np.float64)
    figure = new_figure(1.0 + 0.9 * values.shape[1], 0.8 + 0.8 * values.shape[0])
    axes = figure.add_subplot()
    image = axes.imshow(values, vmin=min(0.0, np.nanmin(values)), vmax=1.0, cmap="viridis")
    axes.set_xticks(range(values.shape[1]), [str(c) for c in matrix.columns])
    axes.set_yticks(range(values.shape[0]), [str(i) for i in matrix.index])
    axes.set_xlabel(matrix.columns.name or "")
    axes.set_ylabel(matrix.index.name or "")
    for (i, j), value in np.ndenumerate(values):
        # dark text on the bright end of viridis, light text elsewhere
        axes.text(j, i, f"{value:.2f}", ha="center", va="center",
                  color="black" if value > 0.7 else "white", fontsize=8)
    figure.colorbar(image, ax=axes, label="Kendall tau-b")
    axes.set_title(title or "Kendall tau-b between fidelities")
    return save_figure(figure, path)


# ---------------------------------------------------------------------------- report section
def sections(run: PaperRun) -> list[TableSection]:
    """The ``thesis_kendall_fidelity`` study's report section and its heat map."""
    backend = run.surrogate(CellSpace.pnas())
    table = thesis_kendall_fidelity(backend, seed=run.settings.seed)
    plot_fidelity_heatmap(fidelity_tau_matrix(backend, seed=run.settings.seed),
                          run.figure("thesis_fidelity_tau.png"))
    return [TableSection(
        "thesis_kendall_fidelity", "Kendall tau-b of reduced versus full training, 800 bootstrap samples",
        table, settings={"backend": "surrogate", "max_epochs": backend.max_epochs},
        figures=("thesis_fidelity_tau.png",),
        notes=("The surrogate's fidelity curve is anchored on the thesis' NAS-Bench-101 figures, so the "
               "match at 36/108 of full fidelity is by construction; the rest of the curve, the rounding "
               "effect and the bootstrap errors are measured. The thesis' figures:\n\n"
               + markdown_table(paper_numbers.thesis_kendall_fidelity())),
    )]
