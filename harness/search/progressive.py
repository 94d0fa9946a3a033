"""PNAS (Algorithm 1) and POPNAS (section 3.2): progressive searches guided by predictors.

Step 1 trains all unique one-block cells. Step ``b > 1`` expands the cells
trained at step ``b - 1`` by every block, scores all children with the
accuracy predictor fitted on everything trained so far, keeps ``K`` of them,
trains those, and fits the predictor again (from scratch on all data, as
PNAS's ensembles are). POPNAS also predicts each child's training time with
a regressor fitted on the times measured so far, drops children slower than
``time_limit``, keeps a time-accuracy front (``front``: the strict Pareto
front, the POPNAS v1 code's sweep, or layered fronts; see
``harness.search.pareto``) and trains at most ``K`` of it (the most accurate
by prediction). With ``time_limit=None`` and ``pareto=False`` POPNAS makes
exactly PNAS's choices. :data:`POPNAS_V1` (``POPNAS.v1(...)``) is POPNAS as
its published code ran it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from harness.evaluator import Backend
from harness.search.base import Strategy
from harness.search.checkpoint import SearchRun
from harness.search.drift import DriftMonitor
from harness.search.pareto import FRONT_RULES, front_mask, top_k
from harness.search_space import CellBatchLike, SearchSpace, accuracy_predictor, time_regressor

#: Candidates kept in full in a step's ``predictions`` table; above it, a seeded sample.
PREDICTIONS_KEPT = 20_000

#: POPNAS as its published code ran it (``AndreaFalanti/popnas`` at ``31ce4e5``), as
#: ``POPNAS(**POPNAS_V1)`` / ``POPNAS.v1(...)`` options. What each changes, and where it comes from:
#:
#: * ``front="v1"``: the front sweep of ``encoder.py``, ``ControllerManager.update_step``
#:   (:func:`harness.search.pareto.v1_front`): children tied in predicted time stay on the front.
#: * ``integer_time_features=True``: in the same loop the children's re-indexed features go
#:   through ``reindexed_child = np.concatenate(reindexed_child, axis=None).astype('int32')``
#:   before ``regressor_NNLS.predict``, while ``train.py`` (``Train.process``) writes the
#:   training rows uncast (:class:`harness.encodings.TruncatedPredictionFeatures`).
#: * ``predictor="lstm"``: the paper's controller is an LSTM (POPNAS 3.3, 4.1: "an LSTM as in
#:   the PNAS algorithm, with a learning rate fixed to 0.002"). ``harness.predictors``' LSTM
#:   uses PNAS's rule, Adam at 0.01 after step 1 (one-block cells only) and 0.002 after.
#: * ``time_limit=None``: ``ControllerManager`` defaults to ``T=np.inf`` and ``train.py``
#:   passes no ``T``, so the published code ran without a limit.
#:
#: v1 behaviour not reproduced here (the harness cannot, or it is no selection rule):
#:
#: * ``StateSpace._construct_permutations`` has its de-duplication conditions commented out,
#:   so v1 scores (and may train) both branch orders of a block and every ordered one-block
#:   cell (256 at step 1 with lookback 2); the harness's cells are canonical by construction.
#: * The v1 controller (``Controller``/``ControllerManager``; sizes from ``train.py``): an LSTM
#:   of 100 units over ``2b`` steps, each step an (input, operator) pair of 20-d embeddings,
#:   trained with MSE, batch size 1, 10 epochs per step, Adam at
#:   ``exponential_decay(0.001, step, 500, 0.98)``, continuing from the previous step's
#:   weights. Its predictions differ from PNAS's controller, which the preset uses as the
#:   paper describes.
#: * The NNLS is a-MLLibrary's with ``fit_intercept`` chosen from ``[True, False]`` on the
#:   training rows (``update_step``'s ``config['NNLS']``); the harness's always fits one.
#: * ``models_scores[0]`` raises ``IndexError`` when the time limit drops every child.
POPNAS_V1: dict[str, Any] = {"front": "v1", "integer_time_features": True, "predictor": "lstm",
                             "time_limit": None}


class PNAS(Strategy):
    """Progressive Neural Architecture Search (Liu et al. 2018, Algorithm 1).

    ``predictor`` names one of ``harness.predictors.make_predictor``'s
    models (``"mlp-ensemble"`` by default: the best at ranking unseen larger
    cells in PNAS Table 1, and the fastest); ``predictor_options`` go to it.
    """

    name: ClassVar[str] = "pnas"

    def __init__(self, space: SearchSpace, backend: Backend, *, K: int = 256, epochs: int | None = None,
                 seed: int = 0, predictor: str = "mlp-ensemble",
                 predictor_options: dict[str, Any] | None = None, eval_chunk: int | None = None,
                 drift_monitor: DriftMonitor | None = None) -> None:
        super().__init__(space, backend, K=K, epochs=epochs, seed=seed, eval_chunk=eval_chunk,
                         drift_monitor=drift_monitor)
        self.predictor = predictor
        self.predictor_options = dict(predictor_options or {})
        self._fitted: tuple[int, Any] | None = None  # (step it was fitted after, model)

    def settings(self) -> dict[str, Any]:
        """The run's settings (``search.json``)."""
        return {**super().settings(), "predictor": self.predictor,
                "predictor_options": self.predictor_options}

    # ------------------------------------------------------------------ predictor
    def _new_predictor(self):
        return accuracy_predictor(self.space, self.predictor, seed=self.seed, **self.predictor_options)

    def _predictor_after(self, step: int, run: SearchRun):
        """The predictor fitted after ``step``: in memory, or restored from the step's checkpoint."""
        if self._fitted is None or self._fitted[0] != step:
            state = run.predictor_state(step)
            self._fitted = (step, self._new_predictor().set_state(state))
        return self._fitted[1]

    def _fit_predictor(self, step: int, trained: pd.DataFrame) -> dict[str, np.ndarray]:
        rows = trained[trained["blocks"] > 0]
        model = self._new_predictor().fit(self.space.parse_many(rows["cell"]), rows["accuracy"].to_numpy())
        self._fitted = (step, model)
        return model.get_state()

    # ------------------------------------------------------------------ steps
    def _step(self, step, run, rng):
        history = self._history(run)
        if step == 1:
            chosen, tables = self._first_step_cells(), {}
            extra = None
        else:
            previous = history[(history["step"] == step - 1) & (history["blocks"] > 0)]
            candidates = self.space.expand(self.space.parse_many(previous["cell"]))
            predicted = self._predictor_after(step - 1, run).predict(candidates)
            index, extra, tables = self._select(step, candidates, predicted, history, rng)
            chosen = candidates.take(index)
        trained = self._train(run, step, chosen, extra)
        tables["trained"] = trained
        if step == self.num_steps:
            # Algorithm 1 updates the predictor after the last step too, but nothing reads it: the
            # search returns its best cell by measured accuracy. Skipping it saves the largest fit.
            return tables, None
        all_trained = pd.concat([history, trained], ignore_index=True)
        return tables, self._fit_predictor(step, all_trained)

    def _first_step_cells(self) -> CellBatchLike:
        return self.space.initial_cells()

    def _select(self, step: int, candidates: CellBatchLike, predicted: np.ndarray, history: pd.DataFrame,
                rng: np.random.Generator):
        """PNAS: the ``K`` children with the highest predicted accuracy."""
        index = top_k(predicted, self.K)
        tables = _candidate_tables(self.space, step, candidates, rng, index,
                                   {"predicted_accuracy": predicted})
        return index, {"predicted_accuracy": predicted[index]}, tables


class POPNAS(PNAS):
    """Pareto-Optimal Progressive NAS (Ardagna et al., section 3.2).

    ``time_limit`` (seconds; ``None`` = no limit) drops children whose
    predicted time exceeds it (the paper's L; kept when ``<=``, as v1's
    ``if data[0] <= self.T``); ``pareto`` keeps only a predicted
    time-accuracy front, built by the rule ``front`` (one of
    :data:`~harness.search.pareto.FRONT_RULES`: ``"strict"``, the
    non-dominated set; ``"v1"``, the published code's sweep, which keeps
    children tied in predicted time; ``"layered"``, successive fronts until
    ``K`` cells). ``time_regressor`` is a scikit-learn regressor on the cell
    matrix (``CellSpace.to_matrix``); the default is POPNAS's final choice,
    NNLS with dynamic re-index and sliding blocks on features without inputs
    (see ``harness.encodings``). ``initial_thrust`` also trains the empty
    cell at step 1 so the regressor sees the fixed overhead.

    ``integer_time_features`` (a v1 quirk, off by default) truncates the
    children's re-indexed features to integers before the default time
    regressor predicts them, the training rows staying real-valued
    (:class:`~harness.encodings.TruncatedPredictionFeatures`); it needs the
    default regressor. :meth:`v1` builds the :data:`POPNAS_V1` preset.
    """

    name: ClassVar[str] = "popnas"

    def __init__(self, space: SearchSpace, backend: Backend, *, K: int = 256, epochs: int | None = None,
                 seed: int = 0, time_limit: float | None = None, pareto: bool = True,
                 predictor: str = "mlp-ensemble", predictor_options: dict[str, Any] | None = None,
                 time_regressor: BaseEstimator | None = None, initial_thrust: bool = True,
                 front: str = "strict", integer_time_features: bool = False,
                 eval_chunk: int | None = None, drift_monitor: DriftMonitor | None = None) -> None:
        super().__init__(space, backend, K=K, epochs=epochs, seed=seed, predictor=predictor,
                         predictor_options=predictor_options, eval_chunk=eval_chunk,
                         drift_monitor=drift_monitor)
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be positive seconds or None, got {time_limit!r}")
        if front not in FRONT_RULES:
            raise ValueError(f"front must be one of {FRONT_RULES}, got {front!r}")
        if integer_time_features and time_regressor is not None:
            raise ValueError("integer_time_features truncates the default time regressor's features; "
                             "with your own time_regressor, build the truncation into it "
                             "(harness.encodings.EncodingConfig(integer_prediction_features=True))")
        self.time_limit = time_limit
        self.pareto = bool(pareto)
        self.front = front
        self.integer_time_features = bool(integer_time_features)
        self.initial_thrust = bool(initial_thrust)
        self.time_regressor = (time_regressor if time_regressor is not None
                               else default_time_regressor(space, self.integer_time_features))

    @classmethod
    def v1(cls, space: SearchSpace, backend: Backend, **overrides: Any) -> "POPNAS":
        """POPNAS as its published code ran it: :data:`POPNAS_V1`, with ``overrides`` on top."""
        return cls(space, backend, **{**POPNAS_V1, **overrides})

    def settings(self) -> dict[str, Any]:
        """The run's settings (``search.json``)."""
        return {**super().settings(), "time_limit": self.time_limit, "pareto": self.pareto,
                "front": self.front, "integer_time_features": self.integer_time_features,
                "initial_thrust": self.initial_thrust, "time_regressor": repr(self.time_regressor)}

    def _first_step_cells(self) -> CellBatchLike:
        cells = self.space.initial_cells()
        if self.initial_thrust:
            cells = self.space.concat([self.space.empty_cells(1), cells])
        return cells

    def _select(self, step, candidates, predicted, history, rng):
        """Time limit, then the front (rule ``front``), then at most ``K`` by predicted accuracy."""
        from harness.encodings import regressor_training_rows

        rows = regressor_training_rows(history, step, initial_thrust=self.initial_thrust)
        model = clone(self.time_regressor).fit(
            self.space.to_matrix(self.space.parse_many(rows["cell"])), rows["train_time"].to_numpy())
        predicted_time = np.asarray(model.predict(self.space.to_matrix(candidates)), dtype=np.float64)
        keep = np.ones(len(candidates), bool)
        if self.time_limit is not None:
            keep &= predicted_time <= self.time_limit
        front = np.zeros(len(candidates), bool)
        kept = np.flatnonzero(keep)
        front[kept[front_mask(self.front, predicted_time[kept], predicted[kept], self.K)]] = True
        pool = np.flatnonzero(front if self.pareto else keep)
        index = pool[top_k(predicted[pool], self.K)]
        # PNAS's pick from the same candidates, kept for comparison (POPNAS Figs. 6-7)
        pnas_pick = np.zeros(len(candidates), bool)
        pnas_pick[top_k(predicted, self.K)] = True
        columns = {"predicted_accuracy": predicted, "predicted_time": predicted_time,
                   "within_time_limit": keep, "on_front": front, "pnas_pick": pnas_pick}
        tables = _candidate_tables(self.space, step, candidates, rng, index, columns)
        pareto_rows = np.flatnonzero(front)
        tables["pareto"] = pd.DataFrame({
            "step": step, "cell": self.space.format(candidates.take(pareto_rows)),
            "predicted_accuracy": predicted[pareto_rows], "predicted_time": predicted_time[pareto_rows],
            "selected": np.isin(pareto_rows, index),
        })
        extra = {"predicted_accuracy": predicted[index], "predicted_time": predicted_time[index]}
        return index, extra, tables


def default_time_regressor(space: SearchSpace, integer_features: bool = False) -> BaseEstimator:
    """POPNAS's final time model for ``space`` (:func:`harness.search_space.time_regressor`; on PNAS
    cells section 4.1.3's NNLS, dynamic re-index, no inputs, sliding blocks); ``integer_features``
    adds the v1 code's truncation of the predicted cells' features."""
    return time_regressor(space, integer_features)


def _candidate_tables(space: SearchSpace, step: int, candidates: CellBatchLike, rng: np.random.Generator,
                      selected: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    """A step's ``candidates`` summary row and its ``predictions`` table.

    Above :data:`PREDICTIONS_KEPT` candidates, ``predictions`` holds a seeded
    uniform sample plus every selected and front cell (flag ``sampled``).
    """
    n = len(candidates)
    is_selected = np.zeros(n, bool)
    is_selected[selected] = True
    keep = np.ones(n, bool)
    if n > PREDICTIONS_KEPT:
        keep = np.zeros(n, bool)
        keep[rng.choice(n, PREDICTIONS_KEPT, replace=False)] = True
        for flag in ("on_front", "pnas_pick"):
            keep |= columns.get(flag, np.zeros(n, bool))
        keep |= is_selected
    rows = np.flatnonzero(keep)
    predictions = pd.DataFrame({"step": step, "cell": space.format(candidates.take(rows)),
                                **{k: v[rows] for k, v in columns.items()},
                                "selected": is_selected[rows], "sampled": n > PREDICTIONS_KEPT})
    acc = columns["predicted_accuracy"]
    summary = {"step": step, "candidates": n, "selected": int(is_selected.sum()),
               "predicted_accuracy_min": float(acc.min()), "predicted_accuracy_median": float(np.median(acc)),
               "predicted_accuracy_max": float(acc.max())}
    if "predicted_time" in columns:
        t = columns["predicted_time"]
        summary.update({"within_time_limit": int(columns["within_time_limit"].sum()),
                        "pareto_front": int(columns["on_front"].sum()),
                        "predicted_time_min": float(t.min()), "predicted_time_median": float(np.median(t)),
                        "predicted_time_max": float(t.max())})
    return {"candidates": pd.DataFrame([summary]), "predictions": predictions}
