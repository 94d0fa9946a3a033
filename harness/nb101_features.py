"""Features of NAS-Bench-101-style cells as scikit-learn transformers, and the models that read them.

Every transformer takes the integer matrix of :meth:`NB101Space.to_matrix`
(its width says the space's ``max_vertices``) and is stateless: ``fit``
checks the input and the hyper-parameters. :class:`NB101Features` has three
encodings:

``"adjacency"``
    the upper triangle of the canonical adjacency matrix (one 0/1 column per
    possible edge), a one-hot of each inner vertex's operator, and the size:
    the adjacency-plus-operators encoding of NAS-Bench-101's predictors.
``"path"``
    BANANAS' path encoding (White et al. 2021): one 0/1 column per operator
    sequence of length 0 .. ``V - 2`` (``sum_l 3**l`` columns, 364 for 7
    vertices), set when some input-output path visits exactly those
    operators; isomorphism-invariant by construction.
``"counts"``
    the number of vertices of each operator, the edge count and the size.

:func:`nb101_time_regressor` builds POPNAS's time regressors on them (and
on :class:`~harness.cost_features.CostFeatures`), :class:`NB101Predictor`
the tabular accuracy predictors the searches use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from harness.nb101_space import INNER_OPERATORS, NB101Batch, NB101Space, PAD
from harness.predictors import NB201Predictor

#: Encodings of :class:`NB101Features`.
NB101_ENCODINGS: tuple[str, ...] = ("adjacency", "path", "counts")


def nb101_space_of(X: Any, where: str) -> tuple[NB101Space, np.ndarray]:
    """The space whose :meth:`~NB101Space.to_matrix` has ``X``'s width, and ``X`` as an integer array."""
    matrix = np.asarray(X)
    if matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected a 2-d integer NB101 cell matrix, got shape {matrix.shape}, "
                         f"dtype {matrix.dtype}")
    for vertices in range(3, 8):
        if matrix.shape[1] == 1 + vertices * (vertices - 1) // 2 + vertices - 2:
            if matrix.dtype.kind == "f" and not (matrix == np.round(matrix)).all():
                raise ValueError(f"{where}: an NB101 cell matrix holds integers")
            return NB101Space(max_vertices=vertices), matrix.astype(np.int64)
    raise ValueError(f"{where}: {matrix.shape[1]} columns is not the width of an NB101 cell matrix "
                     "(27 for 7 vertices, 20 for 6, 14 for 5, 9 for 4, 5 for 3)")


def nb101_cells(X: Any, where: str) -> NB101Batch:
    """The validated batch of an NB101 cell matrix."""
    space, matrix = nb101_space_of(X, where)
    return space.from_matrix(matrix, where)


def path_encoding(cells: NB101Batch) -> np.ndarray:
    """``(n, sum_l 3**l)`` bool: which operator sequences label an input-output path (module docstring)."""
    n, v = cells.ops.shape
    lengths = np.arange(v - 1)
    offsets = np.r_[0, np.cumsum(3**lengths)]  # sequences of length l start at offsets[l]
    width = int(offsets[-1])
    # a sequence of length l at position offsets[l] + i, extended by operator o, lands at
    # offsets[l + 1] + 3 i + (o - 1); sequences of the longest length have no extension
    extend = np.full((width, len(INNER_OPERATORS)), -1, np.int64)
    for length in lengths[:-1]:
        i = np.arange(3**length)
        for j, _ in enumerate(INNER_OPERATORS):
            extend[offsets[length] + i, j] = offsets[length + 1] + 3 * i + j
    reach = np.zeros((n, v, width), bool)
    reach[:, 0, 0] = True  # the empty sequence reaches the input
    rows = np.arange(n)
    for t in range(1, v):  # canonical slots are in topological order
        arriving = (cells.adjacency[:, :t, t, None] & reach[:, :t]).any(axis=1)
        if t == v - 1:
            reach[:, t] = arriving  # the output adds no operator
            continue
        op = cells.ops[:, t]
        used = op != PAD
        column = extend[:, np.where(used, op - INNER_OPERATORS[0], 0)].T  # (n, width)
        hit_rows, hit_cols = np.nonzero(arriving & used[:, None])
        reach[rows[hit_rows], t, column[hit_rows, hit_cols]] = True
    return reach[:, v - 1]


class NB101Features(TransformerMixin, BaseEstimator):
    """NB101 cell matrix -> regression features (``encoding``: see the module docstring)."""

    def __init__(self, *, encoding: str = "adjacency"):
        self.encoding = encoding

    def fit(self, X, y=None):
        """Check ``encoding`` and ``X``; nothing is learned."""
        if self.encoding not in NB101_ENCODINGS:
            raise ValueError(f"NB101Features encoding must be one of {NB101_ENCODINGS}, got {self.encoding!r}")
        nb101_cells(X, "NB101Features.fit X")
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """The features of the cells of ``X`` as a float matrix."""
        check_is_fitted(self)
        cells = nb101_cells(X, "NB101Features X")
        v = cells.ops.shape[1]
        size = cells.num_blocks.astype(np.float64)[:, None]
        inner = cells.ops[:, 1 : v - 1]
        if self.encoding == "path":
            return path_encoding(cells).astype(np.float64)
        if self.encoding == "counts":
            counts = (inner[:, :, None] == np.array(INNER_OPERATORS)).sum(axis=1)
            return np.concatenate([counts, cells.num_edges[:, None], size], axis=1).astype(np.float64)
        rows, cols = np.triu_indices(v, 1)
        onehot = (inner[:, :, None] == np.array(INNER_OPERATORS)).reshape(len(cells), -1)
        return np.concatenate([cells.adjacency[:, rows, cols], onehot, size], axis=1).astype(np.float64)


def nb101_time_regressor(name: str, encoding: str = "adjacency", xgboost_grid: dict | None = None,
                         cost_options: dict | None = None) -> BaseEstimator:
    """The unfitted time regressor ``name`` on NB101 cell matrices.

    ``name`` is one of :data:`harness.regressors.REGRESSORS` but the block
    sum (``ridge``, ``nnls``, ``nnls_no_intercept``, ``xgboost``) on
    :class:`NB101Features` (``encoding``), ``"block_sum"``
    (:class:`harness.regressors.NB101BlockSumRegressor`), ``"mean"`` or
    ``"cost_nnls"``: NNLS on the network's parameter count and FLOPs
    (:class:`harness.cost_features.CostFeatures` with ``cost_options``).
    """
    from harness.cost_features import CostFeatures
    from harness.regressors import NB101BlockSumRegressor, feature_time_regressor

    if name == "block_sum":
        return NB101BlockSumRegressor()
    if name == "cost_nnls":
        return feature_time_regressor("nnls", CostFeatures(space="nb101", network=cost_options))
    return feature_time_regressor(name, NB101Features(encoding=encoding), xgboost_grid)


class NB101Predictor(NB201Predictor):
    """An accuracy predictor on NB101 batches (or their matrices) for the searches.

    ``model`` is one of :data:`harness.predictors.NB201_PREDICTORS`'s tabular
    models (MLP with PNAS's sizes, its ensemble, XGBoost, Ridge), here on
    :class:`NB101Features` (``encoding``); the checkpoint state and the
    seeding are :class:`~harness.predictors.NB201Predictor`'s.
    """

    def __init__(self, *, model: str = "ridge", seed: int = 0, encoding: str = "adjacency") -> None:
        super().__init__(model=model, seed=seed)
        self.encoding = encoding

    @staticmethod
    def _matrix(X: Any, where: str) -> np.ndarray:
        if isinstance(X, NB101Batch):
            return NB101Space(max_vertices=X.ops.shape[1]).to_matrix(X)
        nb101_cells(X, where)
        return np.asarray(X)

    def _unfitted_model(self) -> BaseEstimator:
        from harness.predictors import tabular_accuracy_model

        return tabular_accuracy_model(self.model, int(self.seed), NB101Features(encoding=self.encoding))


__all__ = ["NB101Features", "NB101Predictor", "NB101_ENCODINGS", "nb101_cells", "nb101_space_of",
           "nb101_time_regressor", "path_encoding"]
