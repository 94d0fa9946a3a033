"""Study ``pnas_table1``: how well do PNAS's predictors rank cells they fit and larger unseen ones? (PNAS 5.2)

PNAS Algorithm 2. For each size ``b = 1 .. B-1`` a pool ``U_b`` of ``R``
random ``b``-block cells is evaluated once (for ``b = 1`` the pool is all 136
unique one-block cells). In trial ``t = 1 .. T`` a training set
``S_{b,t}`` of ``K`` cells is drawn from ``U_b`` without replacement (all of
``U_b`` when it holds fewer than ``K``: the 136 one-block cells), every
predictor is fitted on it from scratch and scored by Spearman's rho between
predicted and measured accuracy

* on its own training set: ``rho-hat_b`` (``evaluated_on = "train"``,
  ``eval_blocks = b``);
* on all ``R`` cells of ``U_{b+1}``, none of which it has seen (they are one
  block larger): ``rho-tilde_{b+1}`` (``evaluated_on = "next"``,
  ``eval_blocks = b + 1``).

All predictors of a trial share the training set and the predictor seed
(common random numbers), so their differences are not blurred by different
draws. Accuracies are the backend's measured (noisy) ``accuracy``, one
evaluation per pool with ``seed``: the ``A(H)`` of Algorithm 2.

Aggregation (the paper's Fig. 3 marks "the mean rank correlation from
individual trials"): ``spearman_mean`` is the mean over trials of the
per-trial rho, ``spearman_std`` their standard deviation over trials (ddof
1), and ``std_error``, ``ci_low``, ``ci_high`` come from the two-level
bootstrap of :func:`trial_mean_correlation`: each replicate resamples the
trials with replacement and, inside each drawn trial, its evaluated cells
with replacement, then averages the per-trial rho. So the interval covers
both the choice of training sets (and predictor seeds) and the choice of
evaluated cells. ``U_{b+1}`` is shared by all trials, so its cells are
resampled jointly (one index for every trial), as they would be redrawn
jointly if the experiment were repeated.

Defaults are the paper's: ``K = 256``, ``R = 10,000``, ``T = 20``, ``B = 5``,
and the predictors at :mod:`harness.predictors`' defaults. That costs over an
hour of CPU, mostly the LSTM ensembles' fits; :data:`MAIN_JOB_SCALE` is the
reduced scale the main job runs (see its comment).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

import backends
from ablations import paper_numbers
from ablations.report import TableSection
from harness.evaluator import Backend
from harness.metrics import (
    METHODS,
    CorrelationEstimate,
    estimate_from_replicates,
    kendall_resamples,
    spearman_resamples,
)
from harness.predictors import PREDICTOR_NAMES, make_predictor
from harness.space import CellSpace
from harness.validation import check_integer

if TYPE_CHECKING:  # annotations only: the run context imports the studies' settings
    from ablations.run import PaperRun

#: Our predictor names -> the names of PNAS Table 1's rows (and of ``paper_numbers.pnas_table1``).
PAPER_PREDICTOR_NAMES: dict[str, str] = {
    "mlp": "MLP",
    "lstm": "RNN",
    "mlp-ensemble": "MLP-ensemble",
    "lstm-ensemble": "RNN-ensemble",
}

#: Columns of :func:`pnas_table1`'s table, in order.
TABLE1_COLUMNS: tuple[str, ...] = (
    "predictor", "fit_blocks", "evaluated_on", "eval_blocks", "spearman_mean", "spearman_std",
    "std_error", "ci_low", "ci_high", "trials", "n", "K", "R", "n_boot",
)

#: Options :func:`pnas_table1` sets itself, so ``predictor_options`` may not.
_RESERVED_OPTIONS = ("max_blocks", "lookback", "seed")

#: Resamples are drawn and scored in chunks of about this many drawn pairs, to bound memory.
_CHUNK_PAIRS = 1 << 22


def spread_over_trials(values: np.ndarray) -> float:
    """Standard deviation (ddof 1) of the defined per-trial correlations; NaN with fewer than two."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")


def _check_trials(trials: Sequence[tuple[np.ndarray, np.ndarray]], common_cells: bool
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(x, y)`` pairs of every trial as float arrays; ``ValueError`` naming what is wrong."""
    if len(trials) == 0:
        raise ValueError("trial_mean_correlation needs at least one trial")
    checked = []
    for t, (x, y) in enumerate(trials):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"trial {t}: x and y must be 1-d and of equal length, got {x.shape}, {y.shape}")
        if len(x) < 3:
            raise ValueError(f"trial {t}: a rank correlation needs at least 3 pairs, got {len(x)}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"trial {t}: x and y must be finite (found NaN or infinity)")
        checked.append((x, y))
    if common_cells and len({len(x) for x, _ in checked}) != 1:
        raise ValueError("common_cells=True needs the same number of pairs in every trial")
    return checked


def _per_trial(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """The correlation of one trial on its full sample (NaN when x or y is constant)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if method == "kendall":
        return float(stats.kendalltau(x, y).statistic)
    return float(stats.spearmanr(x, y).statistic)


def trial_mean_correlation(
    trials: Sequence[tuple[np.ndarray, np.ndarray]],
    method: str = "spearman",
    n_boot: int = 800,
    confidence: float = 0.95,
    seed: int = 0,
    common_cells: bool = False,
) -> tuple[CorrelationEstimate, np.ndarray]:
    """The mean over trials of a rank correlation, with a two-level bootstrap interval.

    ``trials`` holds one ``(x, y)`` pair of vectors per trial (e.g. predicted
    and measured accuracy of the cells a trial's predictor scored). Returns
    the estimate and the per-trial correlations. In the estimate ``value``
    is the mean of the per-trial correlations (Kendall's tau-b or Spearman's
    rho on each trial's full sample); each of the ``n_boot`` replicates draws
    ``T`` trials with replacement and, for each drawn trial, resamples its
    pairs with replacement (the vectorised resamplers of
    :mod:`harness.metrics`), and averages; ``std_error`` is the standard
    deviation of the replicates and ``ci_low``, ``ci_high`` their percentile
    interval. With ``common_cells`` the trials scored the same cells in the
    same order, and one pair index per replicate is used for all of them.

    Trials whose correlation is undefined (constant predictions) are left
    out of the mean, as undefined replicates are left out of the interval
    (the convention of :func:`harness.metrics.bootstrap_correlation`).
    ``n`` of the estimate is the total number of pairs over trials.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    check_integer("n_boot", n_boot, minimum=2)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    trials = _check_trials(trials, common_cells)
    values = np.array([_per_trial(x, y, method) for x, y in trials])

    resample = kendall_resamples if method == "kendall" else spearman_resamples
    rng = np.random.default_rng(seed)
    replicates = np.empty((len(trials), n_boot))
    per_chunk = max(1, _CHUNK_PAIRS // max(len(x) for x, _ in trials))
    for start in range(0, n_boot, per_chunk):
        rows = min(per_chunk, n_boot - start)
        shared = rng.integers(0, len(trials[0][0]), size=(rows, len(trials[0][0]))) if common_cells else None
        for t, (x, y) in enumerate(trials):
            index = shared if common_cells else rng.integers(0, len(x), size=(rows, len(x)))
            replicates[t, start : start + rows] = resample(x, y, index)
    drawn = rng.integers(0, len(trials), size=(n_boot, len(trials)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN mean is meant to be NaN
        means = np.nanmean(replicates[drawn, np.arange(n_boot)[:, None]], axis=1)
        value = float(np.nanmean(values))
    estimate = estimate_from_replicates(method, value, means, sum(len(x) for x, _ in trials), confidence)
    return estimate, values


@dataclass(frozen=True)
class Table1Scale:
    """The scale of :func:`pnas_table1`: the paper's by default.

    ``predictor_options`` maps a predictor name (``"mlp"`` ...) to keyword
    options of its constructor (e.g. ``{"lstm": {"epochs": 20}}``).
    :meth:`as_kwargs` gives the keyword arguments of :func:`pnas_table1`.
    """

    K: int = 256
    R: int = 10_000
    trials: int = 20
    n_boot: int = 800
    predictor_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments (a deep copy: the caller may change them)."""
        return asdict(self)


#: PNAS 5.2's scale: K = 256, R = 10,000, T = 20, the predictors at their defaults.
PAPER_SCALE = Table1Scale()

#: The main job's scale: about 56 s of CPU (one core; measured on the 2-core machine). Two trials
#: give a spread over training sets; R = 1,000 measures rho-tilde to about +-0.03; the MLPs train
#: 75 epochs instead of 150 and the LSTMs 20 instead of 60, because the ensembles' fits (5 members
#: each) dominate the cost. Shorter training lowers rho-hat (the fit to the training set); the
#: paper's training length is :data:`PAPER_SCALE`'s. Measured (single LSTM, max_blocks 3, these R,
#: trials and n_boot, seed 0; the output bias at the mean accuracy): rho-hat 0.860 at 20 epochs and
#: 0.969 at 60 for b = 1 (paper 0.97), 0.645 and 0.737 for b = 2 (paper 0.996); rho-tilde 0.260
#: and 0.361 (b = 1), 0.426 and 0.436 (b = 2).
MAIN_JOB_SCALE = Table1Scale(
    R=1000, trials=2, n_boot=200,
    predictor_options={
        "mlp": {"epochs": 75}, "mlp-ensemble": {"epochs": 75},
        "lstm": {"epochs": 20}, "lstm-ensemble": {"epochs": 20},
    },
)


def _check_options(predictors: Sequence[str], predictor_options: Mapping[str, Mapping[str, Any]] | None
                   ) -> dict[str, dict[str, Any]]:
    """Validated predictor names and their options (an empty dict for those without)."""
    if isinstance(predictors, str) or len(predictors) == 0:
        raise ValueError(f"predictors must be a non-empty sequence of names, got {predictors!r}")
    unknown = [p for p in predictors if p not in PREDICTOR_NAMES]
    if unknown or len(set(predictors)) != len(predictors):
        raise ValueError(
            f"predictors must be distinct names from {PREDICTOR_NAMES}; got {list(predictors)}"
        )
    options = dict(predictor_options or {})
    stray = sorted(set(options) - set(predictors))
    if stray:
        raise ValueError(f"predictor_options names predictors that are not run: {stray}")
    for name, extra in options.items():
        reserved = sorted(set(extra) & set(_RESERVED_OPTIONS))
        if reserved:
            raise ValueError(
                f"predictor_options[{name!r}] may not set {reserved}: pnas_table1 sets them itself"
            )
    return {name: dict(options.get(name, {})) for name in predictors}


def pnas_table1(
    backend: Backend | None = None,
    predictors: Sequence[str] = PREDICTOR_NAMES,
    max_blocks: int = 5,
    K: int = PAPER_SCALE.K,
    R: int = PAPER_SCALE.R,
    trials: int = PAPER_SCALE.trials,
    n_boot: int = PAPER_SCALE.n_boot,
    confidence: float = 0.95,
    seed: int = 0,
    predictor_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """PNAS Table 1 by Algorithm 2 (see the module docstring): one row per predictor, size and set.

    ``backend`` defaults to the noisy-Rastrigin surrogate on the PNAS space
    with ``B = max_blocks``; a given backend's space must have at least
    ``max_blocks`` blocks. ``predictors`` are names of
    :func:`harness.predictors.make_predictor`; the table writes them as the
    paper does (:data:`PAPER_PREDICTOR_NAMES`). ``predictor_options`` maps a
    predictor name to extra constructor options. ``progress`` shows a bar
    over (size, trial). The same arguments give the same table.

    Columns: :data:`TABLE1_COLUMNS`; ``n`` is the number of cells each
    trial scores (``min(K, |U_b|)`` on ``"train"``, ``|U_{b+1}|`` on
    ``"next"``).
    """
    options = _check_options(predictors, predictor_options)
    max_blocks = check_integer("max_blocks", max_blocks, minimum=2)
    K = check_integer("K", K, minimum=5)  # an ensemble needs a cell per member
    R = check_integer("R", R, minimum=3)
    trials = check_integer("trials", trials)
    check_integer("n_boot", n_boot, minimum=2)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    backend = backends.make("surrogate", space=CellSpace.pnas(max_blocks=max_blocks)) if backend is None else backend
    space = backend.space
    if not isinstance(space, CellSpace) or space.max_blocks < max_blocks:
        raise ValueError(
            f"pnas_table1 needs a backend of a PNAS-style cell space with at least "
            f"max_blocks={max_blocks} blocks; got {getattr(space, 'name', space)!r}"
        )

    # U_1 is every unique one-block cell; U_b (b >= 2) R distinct random b-block cells
    pools = {1: space.initial_cells()}
    pools.update({
        b: space.sample(min(R, space.num_unique_cells(b)), b, seed=[seed, b])
        for b in range(2, max_blocks + 1)
    })
    accuracy = {b: backend.evaluate(cells, seed=seed)["accuracy"].to_numpy() for b, cells in pools.items()}

    scored: dict[tuple[str, int, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    steps = [(b, t) for b in range(1, max_blocks) for t in range(trials)]
    for b, t in tqdm(steps, desc="pnas_table1 (size, trial)", disable=not progress, leave=False):
        rng = np.random.default_rng([seed, b, t])
        train = np.sort(rng.choice(len(pools[b]), size=min(K, len(pools[b])), replace=False))
        cells, target = pools[b].take(train), accuracy[b][train]
        fit_seed = int(np.random.SeedSequence([seed, b, t]).generate_state(1)[0])
        for name in predictors:
            model = make_predictor(name, max_blocks=space.max_blocks, lookback=space.lookback,
                                   seed=fit_seed, **options[name]).fit(cells, target)
            scored.setdefault((name, b, "train"), []).append((model.predict(cells), target))
            scored.setdefault((name, b, "next"), []).append((model.predict(pools[b + 1]), accuracy[b + 1]))

    rows = []
    for (name, b, evaluated_on), pairs in scored.items():
        # U_{b+1} is common to every trial; training sets are shared only when they are all of U_b
        common = evaluated_on == "next" or len(pools[b]) <= K
        estimate, values = trial_mean_correlation(
            pairs, method="spearman", n_boot=n_boot, confidence=confidence, seed=seed,
            common_cells=common,
        )
        rows.append({
            "predictor": PAPER_PREDICTOR_NAMES[name], "fit_blocks": b, "evaluated_on": evaluated_on,
            "eval_blocks": b if evaluated_on == "train" else b + 1,
            "spearman_mean": estimate.value,
            "spearman_std": spread_over_trials(values),
            "std_error": estimate.std_error, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high,
            "trials": trials, "n": len(pairs[0][0]), "K": K, "R": R, "n_boot": estimate.n_boot,
        })
    return pd.DataFrame(rows, columns=list(TABLE1_COLUMNS))


# ---------------------------------------------------------------------------- report section
def sections(run: PaperRun) -> list[TableSection]:
    """The ``pnas_table1`` study's report section (PNAS Table 1) on the surrogate."""
    cfg = dict(run.settings.pnas_table1)
    space = CellSpace.pnas(max_blocks=cfg.pop("max_blocks", 5))
    table = pnas_table1(run.surrogate(space), max_blocks=space.max_blocks, seed=run.settings.seed, **cfg)
    return [TableSection(
        "pnas_table1", "Predictors' Spearman correlation by PNAS Algorithm 2 (PNAS Table 1)", table,
        paper_numbers.pnas_table1(), ("predictor", "fit_blocks", "evaluated_on", "eval_blocks"),
        ("On the surrogate. rho-hat ('train') is measured on the K training cells, rho-tilde ('next') on "
         "R unseen random cells one block larger; mean and std over trials, CI by a two-level bootstrap "
         "(trials, then cells). The main job runs fewer trials, a smaller R and shorter predictor "
         "training than the paper (T=20, R=10,000); `ablations.pnas_table1.PAPER_SCALE` is the "
         "paper's. The output bias starts at the logit of the mean training accuracy instead of "
         "PNAS's 1.8 (0.86, CIFAR-10's mean), which the surrogate's accuracies are far from. The "
         "shorter training explains the RNN's low rho-hat at b = 1 and part of it at b = 2: measured with one LSTM on the same surrogate "
         "(max_blocks 3, seed 0), rho-hat at b = 1 is 0.860 after 20 epochs and 0.969 after the "
         "paper-scale 60 (paper 0.97), at b = 2 0.645 and 0.737 (paper 0.996, still apart). The rest "
         "is the landscape, not CIFAR-10's: half of the surrogate's accuracy signal is a smooth "
         "function of a sum over blocks (`smoothness` 0.5), which lets one-block cells rank two-block ones. Measured with one MLP "
         "(max_blocks 2, 75 epochs, seed 0): rho-tilde at b = 1 is 0.612 [0.577, 0.656] on the "
         "default surrogate and 0.088 [0.033, 0.158] with `smoothness` 0 (the rugged Rastrigin part "
         "alone), whose interval holds the paper's 0.113."),
        {"max_blocks": space.max_blocks, **cfg},
    )]
