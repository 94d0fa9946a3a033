"""PNAS accuracy predictors (PNAS section 4.2, 5.1): MLP, LSTM and their 5-fold ensembles.

All predictors are scikit-learn regressors. ``X`` is the cell matrix of
:meth:`harness.space.CellSpace.to_matrix` (``(n, 1 + 4 * max_blocks)``:
block count, then ``in1, op1, in2, op2`` per slot, empty slots
:data:`~harness.space.EMPTY`), or a :class:`~harness.space.CellBatch`
directly. ``y`` holds accuracies as fractions in ``[0, 1]``: the models end
in a sigmoid, so values outside that range (percentages, say) are rejected
rather than silently fitted badly. Cells must have at least one block (the
empty cell, POPNAS's initial-thrust row, has no tokens to read).

Models, as in the paper
    Two shared embedding tables of size ``embedding_dim`` (D = 100), one for
    input tokens (``-lookback .. max_blocks-2``), one for the 8 operators,
    initialised uniformly in ``[-0.1, 0.1]``. The MLP concatenates the four
    embeddings of a block (``I1, I2, O1, O2``: 4D), averages over the cell's
    blocks, then applies two fully connected layers of ``hidden`` (100)
    units with ReLU and a linear output. The LSTM (hidden 100) reads the
    ``4b`` tokens block by block in the order ``I1, I2, O1, O2`` and its
    final hidden state goes through a linear output. Both end in a sigmoid;
    the output bias starts at ``output_bias`` = 1.8 (0.86 after the
    sigmoid, the mean accuracy PNAS observed at b = 1). Loss L1, optimiser
    Adam with learning rate 0.01 when every training cell has one block
    (the b = 1 level) and 0.002 otherwise, unless ``lr`` is given.

Choices the paper leaves open (documented here)
    * Training length: ``epochs`` passes over the data in shuffled
      minibatches of ``batch_size``; the defaults, 200 epochs of 256 cells,
      are 200 full-batch Adam steps at PNAS's K = 256. On the surrogate's
      136 one-block cells the MLP reaches a training-set Spearman
      correlation of 0.92-0.97 (PNAS Table 1: 0.938) in about a second on
      a 2-core CPU.
    * ``output_bias=None`` starts the bias at the logit of the mean
      training accuracy instead, the paper's own reasoning applied to the
      data at hand. Use it when accuracies sit far from 0.86 (short proxy
      training, the surrogate backend's ~0.6): at lr 0.002 Adam moves the
      bias by about 0.002 a step, so from 1.8 the first several hundred
      steps go into shifting the output level rather than ranking cells.
    * Other weights (fully connected layers, LSTM) use PyTorch's default
      ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, but drawn from a generator
      seeded with ``seed`` so that fits never depend on torch's global RNG.
    * Ensembles draw their folds with a seeded, shuffled ``KFold``; member
      ``k`` is fit from scratch on all folds but ``k`` with its own seed.

Speed
    The members of an ensemble train as one model whose weights are stacked on a leading member
    axis (:func:`_fit_stack`): one set of batched products and one fused Adam step per minibatch
    for all members, every member with its own fold, seed, initialisation and minibatch order. The
    MLP's first layer goes through a per-step token table instead of a product per cell, and its
    gradients are written out by hand (:func:`_fit_mlp_stack`); the LSTM walks one prefix plan of
    all members' minibatches, its input-to-gate side a per-step token table too
    (:func:`_fit_lstm_stack`). A single predictor is a stack of one. Measured on a quiet 2-core AMD
    EPYC (process time, 256 five-block cells, 200 epochs, float64): MLP ensemble 0.62 s, LSTM
    ensemble about 33 s. The matrix products alone that these fits cannot skip take 0.41 s and 19 s
    there (``tests/benchmarks``, ``test_float64_product_floor_of_ensemble_fit``: about 21 GMAC/s,
    one core's float64 rate), so both fits are bound by float64 arithmetic, not by Python. On a
    2-core Intel Sapphire Rapids VM the products run as fast (0.27-0.43 s and 15.2-16.7 s) but the
    elementwise work and Adam, which are bound by memory there, take as long again: MLP ensemble
    0.77-0.84 s, LSTM ensemble 42-49 s on one thread.
    Each stack's ops run single-threaded (minibatch ops are too small to gain from intra-op
    threads); an ensemble's members are split over as many threads as torch is set to use
    (:func:`_fit_stack`), and prediction runs independent chunks on such a pool too; torch's
    thread setting is restored afterwards. The MLP's first layer is linear in the block
    average, so a cell's first pre-activation is ``sum_j T[code_j] / b +
    bias`` where ``T`` holds, for every block code of
    :meth:`CellSpace.block_codes`, that block's contribution. ``T``
    (``(radix, hidden)``, 2,305 rows in the PNAS space) is built once per
    fit, and prediction is one ``embedding_bag`` and two small layers per
    chunk. The LSTM shares prefixes token by token (see
    :func:`_prefix_plan`): siblings from one parent pay for the parent's
    tokens once: the 301,056 children of 256 four-block parents cost about
    1.2 LSTM steps per child instead of 20.

Output grid
    ``predict`` rounds its accuracies to :data:`~harness.resolution.ACCURACY_RESOLUTION` (1e-9).
    Cells the model cannot tell apart (for the MLP, two cells whose blocks are the same multiset)
    get predictions that are equal on paper but a few ulps apart in an order set by the processor's
    kernels; on the grid they are equal on every machine, so top-K choices and rank correlations of
    the predictions do not depend on the machine (:mod:`harness.resolution`).

Checkpoints
    ``get_state()`` returns a ``dict[str, numpy.ndarray]`` (weights and the
    learning rate used; ensembles prefix each member's keys with
    ``member<k>.`` and add its training indices) that ``numpy.savez`` can
    store; ``set_state`` restores it on an estimator with the same
    hyper-parameters, no pickle involved.
"""

from __future__ import annotations

import itertools
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import BaggingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn
from xgboost import XGBRegressor

from harness.encodings import NB201Features, nb201_cells
from harness.nb201_space import NUM_EDGES as _NB201_EDGES
from harness.nb201_space import NB201Space
from harness.operators import NUM_OPERATORS
from harness.regressors import RIDGE_ALPHA
from harness.resolution import ACCURACY_RESOLUTION, OnGrid, on_grid
from harness.space import EMPTY, CellBatch, CellSpace
from harness.validation import check_integer

_NB201_SPACE = NB201Space()

#: Initial bias of the output layer: sigmoid(1.8) = 0.86, PNAS's mean b = 1 accuracy.
OUTPUT_BIAS_INIT = 1.8

#: Half-width of the uniform initialisation of the embeddings (PNAS 5.1).
EMBEDDING_INIT_RANGE = 0.1

#: Adam learning rates of PNAS 5.1: at the b = 1 level, and at all later levels.
LR_FIRST_LEVEL = 0.01
LR_LATER_LEVELS = 0.002

#: Precision of every predictor's weights and arithmetic. In float32 the last bits of a fit and of a
#: prediction depend on the processor's vector kernels (measured on an AVX-512 machine: predictions
#: of the same fit differ by up to 1.8e-7 between ATen's AVX-512 and default kernels, on a quarter of
#: 40,800 candidates), and near-tied candidates then swap places in the searches' top-K. In float64
#: those differences are ~1e-16, far below the resolution predictions are given at
#: (:data:`harness.resolution.ACCURACY_RESOLUTION`), at a small cost: the models are tiny.
DTYPE = torch.float64

#: Names accepted by :func:`make_predictor` (PNAS Table 1's four rows).
PREDICTOR_NAMES: tuple[str, ...] = ("mlp", "lstm", "mlp-ensemble", "lstm-ensemble")


# ---------------------------------------------------------------------------- input handling
def _space(max_blocks: int, lookback: int) -> CellSpace:
    """The cell space the hyper-parameters describe (its constructor validates them)."""
    return CellSpace.pnas(max_blocks=max_blocks, lookback=lookback)


def _as_cells(X: Any, space: CellSpace) -> CellBatch:
    """``X`` (a :class:`CellBatch` or a cell matrix) as a validated, canonical batch.

    Cells must have at least one block.
    """
    if isinstance(X, CellBatch):
        space.validate(X, where="X")
        cells = X
    else:
        cells = space.from_matrix(X, where="X")
    if len(cells) and (cells.num_blocks < 1).any():
        i = int(np.flatnonzero(cells.num_blocks < 1)[0])
        raise ValueError(f"X: cell {i} has no blocks; accuracy predictors need b >= 1")
    return cells


def _as_targets(y: Any, n: int) -> np.ndarray:
    """``y`` as a float64 vector of ``n`` accuracies in ``[0, 1]``."""
    target = np.array(y, dtype=np.float64)  # a copy: torch wants a writable array
    if target.ndim != 1 or len(target) != n:
        raise ValueError(f"y must be a vector of {n} accuracies, got shape {target.shape}")
    if not np.isfinite(target).all():
        raise ValueError("y has non-finite values")
    if (target < 0).any() or (target > 1).any():
        raise ValueError(
            "y must hold accuracies as fractions in [0, 1] (the predictors end in a sigmoid); "
            f"got range [{target.min()}, {target.max()}]"
        )
    return target


def _tokens(cells: CellBatch, lookback: int) -> np.ndarray:
    """``(n, B, 4)`` int64 token ids ``(I1, I2, O1, O2)`` per block; empty slots hold 0.

    Input ids are ``input + lookback`` (rows of the input table), operator
    ids the global ones. Padding gets a valid id so lookups never fail; the
    models mask or skip it.
    """
    blocks = cells.blocks.astype(np.int64)
    tokens = np.stack(
        [blocks[..., 0] + lookback, blocks[..., 2] + lookback, blocks[..., 1], blocks[..., 3]],
        axis=-1,
    )
    tokens[blocks[..., 1] == EMPTY] = 0
    return tokens


# ---------------------------------------------------------------------------- torch modules
class _Embeddings(nn.Module):
    """The two shared token tables: input tokens and operator tokens."""

    def __init__(self, num_inputs: int, dim: int) -> None:
        super().__init__()
        self.inputs = nn.Embedding(num_inputs, dim)
        self.operators = nn.Embedding(NUM_OPERATORS, dim)

    def at(self, position: int) -> nn.Embedding:
        """The table of token ``position`` of a block (``I1, I2, O1, O2``)."""
        return self.inputs if position % 4 < 2 else self.operators

    def block_mean(self, tokens: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """``(n, 4D)``: each cell's blocks' concatenated embeddings, averaged over its blocks.

        One weighted ``embedding_bag`` per token position (weight ``1/b`` on
        used slots, 0 on padding) gives the same mean without building the
        ``(n, B, 4, D)`` tensor, which dominated a training step's time.
        """
        slots = tokens.shape[1]
        used = torch.arange(slots, device=tokens.device)[None, :] < counts[:, None]
        weights = used / counts[:, None].to(self.inputs.weight.dtype)
        return torch.cat(
            [
                nn.functional.embedding_bag(
                    tokens[..., k], table.weight, mode="sum", per_sample_weights=weights
                )
                for k, table in enumerate(map(self.at, range(4)))
            ],
            dim=1,
        )


class _MLP(nn.Module):
    """PNAS's MLP: mean of the blocks' concatenated embeddings, 2 x (FC + ReLU), FC."""

    def __init__(self, num_inputs: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = _Embeddings(num_inputs, dim)
        self.fc1 = nn.Linear(4 * dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def head(self, pre1: torch.Tensor) -> torch.Tensor:
        """Logits from the first layer's pre-activations (shared by both inference paths)."""
        # in place: neither layer's backward needs its own output
        return self.out(self.fc2(pre1.relu_()).relu_()).squeeze(-1)

    def forward(self, tokens: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Logits of cells given as ``(n, B, 4)`` token ids and block counts."""
        return self.head(self.fc1(self.embed.block_mean(tokens, counts)))


class _LSTM(nn.Module):
    """PNAS's RNN: an LSTM over the ``4b`` tokens, final hidden state -> FC.

    ``forward`` follows a :func:`_prefix_plan`: one LSTM step per token
    position, run once per distinct token prefix, so cells that share a
    prefix share its computation and a cell's padded slots are never read.
    """

    def __init__(self, num_inputs: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = _Embeddings(num_inputs, dim)
        # a cell, not nn.LSTM: the plan feeds one token per step, and per-call
        # overhead of the fused sequence kernel made single steps slower
        self.lstm = nn.LSTMCell(dim, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, plan: list[tuple[torch.Tensor, ...]], n: int) -> torch.Tensor:
        """Logits of the ``n`` cells a :func:`_prefix_plan` describes, in batch order."""
        h = c = self.out.weight.new_zeros((1, self.lstm.hidden_size))
        logits = self.out.weight.new_empty(n)
        for position, (tokens, parents, done, final) in enumerate(plan):
            h, c = self.lstm(self.embed.at(position)(tokens), (h[parents], c[parents]))
            logits[done] = self.out(h[final]).squeeze(-1)
        return logits


def _prefix_plan(
    tokens: np.ndarray, num_blocks: np.ndarray, device: str
) -> list[tuple[torch.Tensor, ...]]:
    """How :class:`_LSTM` walks a batch: per token position, its distinct prefixes.

    The cells' token sequences (``4b`` tokens, padding marked -1 so that a
    sequence sorts before its extensions) are sorted lexicographically;
    then the cells sharing the first ``t + 1`` tokens are consecutive, and
    a new prefix starts wherever the previous position's prefix or token
    ``t`` changes: one sort, then ``O(n)`` work per position. Position
    ``t`` holds, per distinct prefix, its last ``tokens`` and ``parents``
    (the prefix id at ``t - 1``, where its LSTM state comes from; position
    0 starts from one empty prefix), and for the cells whose sequence ends
    there, ``done`` (their rows in the batch) and ``final`` (their prefix
    ids).
    """
    n = len(tokens)
    lengths = 4 * num_blocks.astype(np.int64)
    sequences = tokens.reshape(n, -1).astype(np.int8)
    sequences[np.arange(sequences.shape[1])[None, :] >= lengths[:, None]] = -1
    order = np.lexsort(sequences.T[::-1])
    sequences, lengths = sequences[order], lengths[order]
    prefix = np.zeros(n, np.int64)
    plan = []
    for position in range(int(lengths.max(initial=0))):
        active = np.flatnonzero(lengths > position)
        parents, token = prefix[active], sequences[active, position]
        new = np.ones(len(active), bool)
        new[1:] = (parents[1:] != parents[:-1]) | (token[1:] != token[:-1])
        prefix[active] = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        ended = active[lengths[active] == position + 1]
        plan.append(
            tuple(
                torch.from_numpy(a).to(device)
                for a in (
                    token[first].astype(np.int64), parents[first], order[ended], prefix[ended]
                )
            )
        )
    return plan


def _init_parameters(module: nn.Module, generator: torch.Generator, output_bias: float) -> None:
    """Seeded initialisation: embeddings ``U(+-0.1)``, the rest PyTorch's ``U(+-1/sqrt(fan_in))``.

    The output bias is then set to ``output_bias``. Iterating
    ``named_parameters`` gives a fixed order, so a seed fixes every weight.
    """
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith("embed."):
                bound = EMBEDDING_INIT_RANGE
            elif name.startswith("lstm."):
                bound = 1.0 / np.sqrt(module.lstm.hidden_size)  # nn.LSTMCell's own default
            else:
                layer = module.get_submodule(name.rsplit(".", 1)[0])
                bound = 1.0 / np.sqrt(layer.in_features)
            param.uniform_(-bound, bound, generator=generator)
        module.out.bias.fill_(output_bias)


# ---------------------------------------------------------------------------- estimators
@contextmanager
def _single_threaded() -> Iterator[None]:
    """Run torch's CPU ops on one thread, restoring the previous setting afterwards.

    A training step's ops work on at most a few hundred cells, where
    intra-op threads only add synchronisation; on a busy 2-core machine
    they made each step an order of magnitude slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _NeuralPredictor(RegressorMixin, BaseEstimator):
    """Hyper-parameters, training loop, input checks and checkpoints shared by the MLP and LSTM.

    Subclasses set ``_module_class`` and ``_predict_chunk`` and define
    ``_train_logits`` (the differentiable forward pass); the MLP also
    overrides ``_predict_logits`` with its fast path. The parameters are
    documented on :class:`MLPPredictor`.
    """

    _module_class: type[nn.Module]
    #: Cells per inference chunk: small enough for the chunk's activations to stay in cache.
    _predict_chunk: int

    def __init__(
        self,
        max_blocks: int = 5,
        lookback: int = 2,
        embedding_dim: int = 100,
        hidden: int = 100,
        epochs: int = 200,
        lr: float | None = None,
        batch_size: int = 256,
        output_bias: float | None = OUTPUT_BIAS_INIT,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.max_blocks = max_blocks
        self.lookback = lookback
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.output_bias = output_bias
        self.seed = seed
        self.device = device

    # -- fitting
    def fit(self, X: Any, y: Any) -> "_NeuralPredictor":
        """Fit from scratch on cells ``X`` and accuracies ``y`` (fractions in ``[0, 1]``)."""
        space = self._check_params()
        cells = _as_cells(X, space)
        target = _as_targets(y, len(cells))
        if len(cells) == 0:
            raise ValueError("cannot fit a predictor on 0 cells")
        self._fit_members([self], cells, target, [np.arange(len(cells))])
        return self

    def _check_params(self) -> CellSpace:
        """Validate the hyper-parameters (as ``fit`` does); the cell space they describe."""
        space = _space(self.max_blocks, self.lookback)
        for name in ("embedding_dim", "hidden", "epochs", "batch_size"):
            check_integer(name, getattr(self, name))
        if self.lr is not None and not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be None or a positive number, got {self.lr!r}")
        if self.output_bias is not None and not np.isfinite(self.output_bias):
            raise ValueError(f"output_bias must be None or finite, got {self.output_bias!r}")
        return space

    def _start(self, cells: CellBatch, target: np.ndarray) -> torch.Generator:
        """Set ``lr_`` and ``n_features_in_``, build the seeded ``module_``; the generator, which
        then draws the minibatch order."""
        self.lr_ = float(self.lr) if self.lr is not None else (
            LR_FIRST_LEVEL if (cells.num_blocks == 1).all() else LR_LATER_LEVELS
        )
        self.n_features_in_ = 1 + 4 * self.max_blocks
        generator = torch.Generator().manual_seed(int(self.seed))
        self.module_ = self._new_module()
        _init_parameters(self.module_, generator, self._initial_bias(target))
        self.module_.to(self.device)
        return generator

    @classmethod
    def _fit_members(cls, members: list["_NeuralPredictor"], cells: CellBatch, target: np.ndarray,
                     subsets: list[np.ndarray]) -> None:
        """Fit each of ``members`` (validated clones that differ in ``seed`` only) on its ``subset``
        of ``(cells, target)``, one after another through the torch module's own forward pass.

        The MLP and the LSTM override it with their stacked fits; this plain loop is the reference
        those are tested against (``tests/test_predictors.py``).
        """
        for member, subset in zip(members, subsets):
            part, part_target = cells.take(subset), target[subset]
            generator = member._start(part, part_target)
            with _single_threaded():
                member._train(part, torch.from_numpy(part_target).to(member.device), generator)
                member._prepare_inference()

    def _initial_bias(self, target: np.ndarray) -> float:
        """``output_bias``, or with ``None`` the logit of the mean training accuracy."""
        if self.output_bias is not None:
            return float(self.output_bias)
        # clipped so that all-0 or all-1 targets still give a finite start
        mean = float(np.clip(target.mean(), 1e-3, 1 - 1e-3))
        return float(np.log(mean / (1 - mean)))

    def _new_module(self) -> nn.Module:
        num_inputs = self.lookback + self.max_blocks - 1
        return self._module_class(num_inputs, int(self.embedding_dim), int(self.hidden)).to(DTYPE)

    def _train(self, cells: CellBatch, target: torch.Tensor, generator: torch.Generator) -> None:
        """Adam on the L1 loss, ``epochs`` shuffled passes in minibatches of ``batch_size``."""
        # the fused kernel does one pass over all parameters instead of a loop of small ops
        optimiser = torch.optim.Adam(self.module_.parameters(), lr=self.lr_, fused=True)
        self.module_.train()
        for _ in range(int(self.epochs)):
            order = torch.randperm(len(cells), generator=generator).numpy()
            for start in range(0, len(cells), int(self.batch_size)):
                batch = order[start : start + int(self.batch_size)]
                prediction = torch.sigmoid(self._train_logits(cells.take(batch)))
                loss = nn.functional.l1_loss(prediction, target[torch.from_numpy(batch)])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        self.module_.eval()

    def _train_logits(self, cells: CellBatch) -> torch.Tensor:
        """Logits of ``cells`` by the differentiable forward pass used in training."""
        raise NotImplementedError

    def _prepare_inference(self) -> None:
        """Hook run after fitting or restoring weights (the MLP builds its block table)."""

    # -- prediction
    def predict(self, X: Any) -> np.ndarray:
        """Predicted accuracies in ``(0, 1)``, one per cell of ``X``, computed in chunks, on the
        :data:`~harness.resolution.ACCURACY_RESOLUTION` grid (see the module docstring)."""
        check_is_fitted(self, "module_")
        return on_grid(self._predict_cells(_as_cells(X, _space(self.max_blocks, self.lookback))),
                       ACCURACY_RESOLUTION)

    def _predict_cells(self, cells: CellBatch) -> np.ndarray:
        """Predictions for an already validated batch (lets ensembles convert ``X`` once).

        Chunks of ``_predict_chunk`` cells run on a pool of as many threads
        as torch's intra-op setting, each op single-threaded: independent
        chunks parallelise without OpenMP's synchronisation, which on a busy
        2-core machine made large-batch inference up to 30x slower. Chunks
        write disjoint slices, so the result does not depend on scheduling.
        """
        out = np.empty(len(cells), np.float64)

        def predict_chunk(start: int) -> None:
            chunk = cells.take(slice(start, start + self._predict_chunk))
            with torch.inference_mode():
                logits = self._predict_logits(chunk)
                out[start : start + len(chunk)] = torch.sigmoid(logits).cpu().numpy()

        workers = torch.get_num_threads()
        with _single_threaded(), ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(predict_chunk, range(0, len(cells), self._predict_chunk)))
        return out

    def _predict_logits(self, cells: CellBatch) -> torch.Tensor:
        """Logits of one chunk at inference time; the training pass unless overridden."""
        return self._train_logits(cells)

    # -- checkpoints
    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted weights (and ``lr``, the rate used) as numpy arrays, for ``numpy.savez``."""
        check_is_fitted(self, "module_")
        state = {k: v.detach().cpu().numpy().copy() for k, v in self.module_.state_dict().items()}
        state["lr"] = np.asarray(self.lr_)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "_NeuralPredictor":
        """Restore :meth:`get_state`'s arrays; keys and shapes must match these hyper-parameters."""
        _space(self.max_blocks, self.lookback)  # validates them, as fit does
        module = self._new_module()
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        expected["lr"] = ()
        given = {k: tuple(np.shape(v)) for k, v in state.items()}
        if given != expected:
            missing = sorted(set(expected) - set(given))
            extra = sorted(set(given) - set(expected))
            wrong = sorted(k for k in set(expected) & set(given) if expected[k] != given[k])
            raise ValueError(
                f"state does not fit {type(self).__name__}({self.get_params()}): "
                f"missing {missing}, unexpected {extra}, wrong shape {wrong}"
            )
        weights = {k: v for k, v in state.items() if k != "lr"}
        module.load_state_dict(
            {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in weights.items()}
        )
        self.module_ = module.to(self.device).eval()
        self.lr_ = float(state["lr"])
        self.n_features_in_ = 1 + 4 * self.max_blocks
        self._prepare_inference()
        return self


class MLPPredictor(_NeuralPredictor):
    """PNAS's MLP accuracy predictor (see the module docstring for the model and defaults).

    Parameters
    ----------
    max_blocks, lookback:
        the cell space (sizes the input-token table and ``X``'s width).
    embedding_dim:
        D, the size of each token embedding (PNAS: 100).
    hidden:
        units of each of the two fully connected layers (PNAS: 100).
    epochs:
        passes over the data (the paper leaves training length open).
    lr:
        Adam's learning rate; ``None`` applies PNAS's rule (0.01 if every
        training cell has one block, else 0.002).
    batch_size:
        minibatch size; the default 256 makes each epoch one Adam step at
        PNAS's K = 256.
    output_bias:
        initial bias of the output layer (PNAS: 1.8); ``None`` uses the
        logit of the mean training accuracy (see the module docstring).
    seed:
        seeds the initialisation and the minibatch order.
    device:
        torch device for fitting and inference.
    """

    _module_class = _MLP
    _predict_chunk = 4096

    @classmethod
    def _fit_members(cls, members, cells, target, subsets):
        """All members as one stacked model (:func:`_fit_mlp_stack`)."""
        _fit_mlp_stack(members, cells, target, subsets)

    def _prepare_inference(self) -> None:
        """Build ``block_table_``: the first layer's pre-activation share of every block code.

        Rows follow :meth:`CellSpace.block_codes`: code ``1 + b1 * nb + b2``
        with branch ``b = (input + lookback) * 8 + op``; row 0 (empty slot)
        is zero. The first-layer weight splits into four ``(hidden, D)``
        slices for ``I1, I2, O1, O2``, so a branch's share is its input's and
        operator's projections, and a block's is the sum of its two branches.
        """
        module = self.module_
        with torch.no_grad():
            w_i1, w_i2, w_o1, w_o2 = module.fc1.weight.split(int(self.embedding_dim), dim=1)
            inputs, operators = module.embed.inputs.weight, module.embed.operators.weight
            first = ((inputs @ w_i1.T)[:, None, :] + (operators @ w_o1.T)[None]).flatten(0, 1)
            second = ((inputs @ w_i2.T)[:, None, :] + (operators @ w_o2.T)[None]).flatten(0, 1)
            pairs = (first[:, None, :] + second[None]).flatten(0, 1)
            self.block_table_ = torch.cat([torch.zeros_like(pairs[:1]), pairs])

    def _train_logits(self, cells: CellBatch) -> torch.Tensor:
        tokens = torch.from_numpy(_tokens(cells, self.lookback)).to(self.device)
        counts = torch.from_numpy(cells.num_blocks.astype(np.int64)).to(self.device)
        return self.module_(tokens, counts)

    def _predict_logits(self, cells: CellBatch) -> torch.Tensor:
        """The block-table path: one ``embedding_bag`` replaces embeddings, mean and first layer."""
        codes = _space(self.max_blocks, self.lookback).block_codes(cells)
        weights = np.broadcast_to(1.0 / cells.num_blocks[:, None], codes.shape)
        pre1 = nn.functional.embedding_bag(
            torch.from_numpy(codes).to(self.device),
            self.block_table_,
            mode="sum",
            per_sample_weights=torch.from_numpy(weights.astype(np.float64)).to(self.device),
            padding_idx=0,
        )
        return self.module_.head(pre1.add_(self.module_.fc1.bias))


def _token_counts(cells: CellBatch, lookback: int, rows: int) -> np.ndarray:
    """``(n, 4 * rows)``: per cell, how often each token occurs at each block position, over the
    block count.

    Token ``t`` at position ``p`` (``I1, I2, O1, O2``: input ids for the first two, operator ids for
    the last two; ``rows`` is at least the larger vocabulary) is column ``(p // 2) * 2 * rows + 2 t
    + p % 2``, the row order of :func:`_fit_mlp_stack`'s first-layer table; the columns of tokens
    that do not exist stay 0. A row times that table is the MLP's first pre-activation less its
    bias: the block mean of the embeddings, through the first layer.
    """
    tokens = _tokens(cells, lookback)  # (n, B, 4)
    n, slots = tokens.shape[:2]
    width = 4 * rows
    counts = cells.num_blocks.astype(np.int64)
    used = np.arange(slots)[None, :] < counts[:, None]
    position = np.arange(4)
    column = ((position // 2) * 2 * rows + 2 * tokens + position % 2)[used]  # (used slots, 4)
    row = np.repeat(np.arange(n), counts)[:, None]
    weight = np.repeat(1.0 / np.maximum(counts, 1), counts)[:, None]
    flat = np.bincount((row * width + column).ravel(), np.broadcast_to(weight, column.shape).ravel(),
                       minlength=n * width)
    return flat.reshape(n, width)


def _transposed(w: torch.Tensor, dim: int) -> torch.Tensor:
    return w.T


def _as_row(b: torch.Tensor, dim: int) -> torch.Tensor:
    return b[None]


def _from_row(b: torch.Tensor, dim: int) -> torch.Tensor:
    return b[0]


def _first_layer_to_stack(w: torch.Tensor, dim: int) -> torch.Tensor:
    """The MLP's ``(H, 4D)`` first-layer weight as ``(2, D, 2H)``: ``[k, d, j H + h]`` is the weight
    from embedding entry ``d`` at position ``p = 2 k + j`` to unit ``h`` (``k`` 0 for the input
    tokens ``I1, I2``, 1 for the operators ``O1, O2``)."""
    hidden = w.shape[0]
    return w.view(hidden, 2, 2, dim).permute(1, 3, 2, 0).reshape(2, dim, 2 * hidden)


def _first_layer_from_stack(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of :func:`_first_layer_to_stack`."""
    hidden = w.shape[2] // 2
    return w.view(2, dim, 2, hidden).permute(3, 0, 2, 1).reshape(hidden, 4 * dim)


#: How weights are laid out in a stacked fit (:func:`_fit_stack`), from the module's ``(out, in)``
#: layout to one that batched products read without a transpose (``(in, out)``; biases as a row),
#: and back; weights not named keep their layout.
_STACK_LAYOUT: dict[str, tuple[Any, Any]] = {
    "fc1.weight": (_first_layer_to_stack, _first_layer_from_stack),
    **{name: (_transposed, _transposed)
       for name in ("fc2.weight", "out.weight", "lstm.weight_ih", "lstm.weight_hh")},
    **{name: (_as_row, _from_row)
       for name in ("fc1.bias", "fc2.bias", "out.bias", "lstm.bias_ih", "lstm.bias_hh")},
}


def _fit_stack(members: list["_NeuralPredictor"], cells: CellBatch, target: np.ndarray,
               subsets: list[np.ndarray], gradients_of: Any) -> None:
    """Fit ``M`` members at once: weights stacked on a leading member axis, one Adam step for all.

    Each member keeps what a separate fit gives it: its seeded initialisation, its own minibatch
    order (``randperm`` from its generator each epoch) over its own ``subset``, its learning rate.
    Step ``s`` of epoch ``e`` gathers every member's ``s``-th minibatch into ``(M, width_s)`` rows
    of the data (``width_s`` the largest member's ``s``-th minibatch; shorter ones padded with weight
    0), and ``gradients_of(params, rows, weights, targets)`` returns the gradients, one per stacked
    weight, of the sum of the members' mean L1 losses on them. A member's gradient is then its own
    loss's, and Adam is elementwise, so one fused Adam over the stacked weights updates each member
    as its own optimiser would. When
    members run different numbers of minibatches in an epoch (subset sizes on both sides of a
    multiple of ``batch_size``) or use different learning rates, an unfused Adam with per-member
    step counts and rates updates only the members that have a minibatch.

    The stacked weights are kept transposed (:data:`_STACK_LAYOUT`), the layout the batched
    products read, so neither the products nor the gradient accumulation copy a weight each step;
    Adam is elementwise, so the layout changes nothing. ``params`` come in the order of the
    module's ``named_parameters``; ``rows`` is a numpy array, ``weights`` and ``targets`` tensors.

    The members are split into contiguous groups, one per thread torch is set to use (at most one
    per member), and each group trains as its own stack on the plan drawn for all of them (padding
    width, steps per epoch, optimiser), so a member does the same operations in any grouping. Their
    last bits can still differ (~1e-17 after a fit: ATen's elementwise kernels round the tail of a
    tensor in scalar code, and where a member's rows fall depends on the stack), far below the grid
    predictions are given on (:mod:`harness.resolution`); ``tests/test_predictors.py`` holds one
    and two threads to the stacked-fit tolerance. At best a five-member fit on two threads takes
    the time of three members. It takes more: the threads take turns at Python's interpreter lock
    for every op they dispatch, which is why each step's Adam is one call (:class:`_FusedAdam`).
    Measured on a 2-core Intel Sapphire Rapids VM (200 epochs): on 170 three-block cells three
    members alone took 0.36 s on one thread, five members 0.67 s on one thread and 0.50-0.57 s on
    two; on 256 five-block cells, 0.77-0.84 s on one thread and 0.54-0.61 s on two. A sweep that
    runs one job per core gives each job one thread and gains nothing.
    """
    first = members[0]
    M, epochs, batch_size = len(members), int(first.epochs), int(first.batch_size)
    dim, device = int(first.embedding_dim), first.device
    generators = [member._start(cells.take(subset), target[subset]) for member, subset in zip(members, subsets)]
    names = [name for name, _ in first.module_.named_parameters()]
    module_weights = [dict(member.module_.named_parameters()) for member in members]
    identity = (lambda w, dim: w, lambda w, dim: w)
    targets = torch.from_numpy(np.asarray(target, np.float64)).to(device)

    # every step's minibatches, drawn as the separate fits draw them: rows of the whole data, their
    # loss weights (1 / minibatch size, 0 on padding) and which members step. The s-th minibatch of
    # an epoch has the same size in every epoch, so step s of every epoch is padded only to the
    # largest member's s-th minibatch: (epochs, M, widths[s]) arrays, not a whole batch_size each
    # (a tail of 58 cells would otherwise cost as much as a full minibatch of 256)
    per_epoch = max(-(-len(subset) // batch_size) for subset in subsets)
    widths = [min(batch_size, max(len(subset) for subset in subsets) - s * batch_size) for s in range(per_epoch)]
    rows = [np.zeros((epochs, M, width), np.int64) for width in widths]
    weights = [np.zeros((epochs, M, width)) for width in widths]
    for k, (subset, generator) in enumerate(zip(subsets, generators)):
        for epoch in range(epochs):
            order = subset[torch.randperm(len(subset), generator=generator).numpy()]
            for step, start in enumerate(range(0, len(subset), batch_size)):
                batch = order[start:start + batch_size]
                rows[step][epoch, k, :len(batch)] = batch
                weights[step][epoch, k, :len(batch)] = 1.0 / len(batch)
    active = np.stack([w[:, :, 0] > 0 for w in weights], axis=1)  # (epochs, steps per epoch, M)
    rates = np.array([member.lr_ for member in members])
    uniform = bool(active.all()) and bool((rates == rates[0]).all())

    def fit_group(group: np.ndarray) -> None:
        """Fit members ``group`` as one stack, on the plan above (so their arithmetic is that of any
        other grouping: the same padding, optimiser and minibatches)."""
        params = [torch.stack([_STACK_LAYOUT.get(name, identity)[0](module_weights[k][name].detach(), dim)
                               for k in group]).contiguous().requires_grad_() for name in names]
        step_weights = [torch.from_numpy(w[:, group]).to(device) for w in weights]
        optimiser = _FusedAdam(params, float(rates[0])) if uniform else _MaskedAdam(params, rates[group])
        with _single_threaded():
            for epoch, step in itertools.product(range(epochs), range(per_epoch)):
                gradients = gradients_of(params, rows[step][epoch, group], step_weights[step][epoch], targets)
                optimiser.step(gradients, active[epoch, step, group])
            for position, k in enumerate(group):
                with torch.no_grad():
                    for name, param in zip(names, params):
                        module_weights[k][name].copy_(_STACK_LAYOUT.get(name, identity)[1](param[position], dim))
                members[k].module_.eval()
                members[k]._prepare_inference()

    # members are independent: contiguous groups of them run on as many threads as torch is set to
    # use, each without ever waiting on another (its ops single-threaded, as a fit's are)
    workers = min(torch.get_num_threads(), M)
    with _single_threaded(), ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fit_group, np.array_split(np.arange(M), workers)))


def _fit_mlp_stack(members: list["MLPPredictor"], cells: CellBatch, target: np.ndarray,
                   subsets: list[np.ndarray]) -> None:
    """:func:`_fit_stack` for MLP members: forward and backward pass written out as batched products.

    The first layer is linear in the block mean, so (as in :meth:`MLPPredictor._prepare_inference`)
    its pre-activation is the cell's :func:`_token_counts` times a first-layer table: per member,
    the ``R`` input and ``R`` operator embeddings (zero-padded to ``R = max(V, 8)`` rows) times
    their slices of the weight, one batched ``(R, D)`` by ``(D, 2H)`` product per token kind (the
    weight's stacked layout, :func:`_first_layer_to_stack`, makes its result the ``(4R, H)`` table
    without a copy). The backward pass is the chain rule by hand, the products autograd would run,
    without its per-op bookkeeping, and without the gradient of the data. Measured on a quiet 2-core
    AMD EPYC (205 cells a member, 5 members): the products run at the machine's float64 rate
    (about 21 GMAC/s on one core) and take two thirds of a step; the elementwise work and Adam the
    rest.

    The result equals separate fits up to the order of some float64 sums (``tests/test_predictors.py``
    holds them to 1e-9).
    """
    first = members[0]
    num_inputs = int(first.lookback) + int(first.max_blocks) - 1
    rows_per_kind = max(num_inputs, NUM_OPERATORS)
    features = torch.from_numpy(_token_counts(cells, first.lookback, rows_per_kind)).to(first.device)
    dim, hidden = int(first.embedding_dim), int(first.hidden)

    def padded(table: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(table, (0, 0, 0, rows_per_kind - table.shape[1]))

    @torch.no_grad()
    def gradients_of(params, rows, weights, targets):
        embed_in, embed_op, w1, b1, w2, b2, w_out, b_out = params
        M = len(rows)  # the members of this stack
        batch = torch.from_numpy(rows).to(features.device)
        x = features[batch]  # (M, W, 4R)
        embed = torch.stack([padded(embed_in), padded(embed_op)], dim=1).view(2 * M, rows_per_kind, dim)
        w1 = w1.view(2 * M, dim, 2 * hidden)
        table = torch.bmm(embed, w1)  # (2M, R, 2H), as (M, 4R, H) the rows of _token_counts
        a1 = torch.baddbmm(b1, x, table.view(M, 4 * rows_per_kind, hidden)).relu_()
        a2 = torch.baddbmm(b2, a1, w2).relu_()
        s = torch.baddbmm(b_out, a2, w_out).sigmoid_()  # (M, W, 1)
        # d loss / d logit: sign of the error (torch's abs' gradient: 0 at 0), weight, sigmoid's slope
        d3 = torch.sign(s - targets[batch].unsqueeze(-1)).mul_(weights.unsqueeze(-1)).mul_(s * (1 - s))
        # ReLU's gradient as autograd takes it (0 where the output is 0), without a boolean mask
        d2 = torch.ops.aten.threshold_backward(d3 * w_out.transpose(1, 2), a2, 0)
        d1 = torch.ops.aten.threshold_backward(torch.bmm(d2, w2.transpose(1, 2)), a1, 0)
        d_table = torch.bmm(x.transpose(1, 2), d1).view(2 * M, rows_per_kind, 2 * hidden)
        d_embed = torch.bmm(d_table, w1.transpose(1, 2)).view(M, 2, rows_per_kind, dim)
        return [
            d_embed[:, 0, :embed_in.shape[1]].contiguous(),
            d_embed[:, 1, :embed_op.shape[1]].contiguous(),
            torch.bmm(embed.transpose(1, 2), d_table).view(M, 2, dim, 2 * hidden),
            d1.sum(1, keepdim=True),
            torch.bmm(a1.transpose(1, 2), d2),
            d2.sum(1, keepdim=True),
            torch.bmm(a2.transpose(1, 2), d3),
            d3.sum(1, keepdim=True),
        ]

    _fit_stack(members, cells, target, subsets, gradients_of)


def _stacked_prefix_plan(sequences: np.ndarray, lengths: np.ndarray, member: np.ndarray, members: int
                         ) -> list[tuple[np.ndarray, ...]]:
    """:func:`_prefix_plan` for the cells of ``members`` stacked LSTMs at once, padded per member.

    ``sequences`` ``(n, 4B)`` holds the cells' tokens (any value past ``lengths``), ``member`` which
    member reads each cell. Cells are sorted by member, then by token sequence, so every member's
    distinct prefixes at a position are consecutive; slot ``j`` of member ``k`` is its ``j``-th
    prefix, and the members' slot arrays are padded to the longest (padding slots read token 0
    from slot 0 and feed nothing). Per position: ``tokens`` ``(M, P)`` (each slot's last token) and
    ``parents`` ``(M * P,)`` (the row of its prefix's state one position earlier in the flattened
    ``(M * P', H)`` states), and for the cells whose sequence ends there ``ended`` (their rows in
    the input), ``owners`` and ``slots`` (member and slot of their prefix).
    """
    sequences = sequences.astype(np.int8)
    sequences[np.arange(sequences.shape[1])[None, :] >= lengths[:, None]] = -1
    order = np.lexsort(list(sequences.T[::-1]) + [member])
    sequences, lengths, member = sequences[order], lengths[order], member[order]
    prefix = np.zeros(len(order), np.int64)  # per cell, its prefix's slot at the last position
    plan: list[tuple[np.ndarray, ...]] = []
    previous_width = 1
    for position in range(int(lengths.max(initial=0))):
        active = np.flatnonzero(lengths > position)
        owner, parents, token = member[active], prefix[active], sequences[active, position]
        new = np.ones(len(active), bool)
        new[1:] = (owner[1:] != owner[:-1]) | (parents[1:] != parents[:-1]) | (token[1:] != token[:-1])
        first = np.flatnonzero(new)
        number = np.cumsum(new) - 1  # the prefix's index among all members' prefixes here
        owners = owner[first]
        slot = np.arange(len(first)) - np.searchsorted(owners, owners)  # its index within its member
        prefix[active] = slot[number]
        width = int(slot.max()) + 1
        tokens, parent_rows = np.zeros((members, width), np.int64), np.zeros((members, width), np.int64)
        tokens[owners, slot] = token[first]
        parent_rows[owners, slot] = owners * previous_width + parents[first]
        ended = active[lengths[active] == position + 1]
        plan.append((tokens, parent_rows.ravel(), order[ended], member[ended], prefix[ended]))
        previous_width = width
    return plan


def _fit_lstm_stack(members: list["LSTMPredictor"], cells: CellBatch, target: np.ndarray,
                    subsets: list[np.ndarray]) -> None:
    """:func:`_fit_stack` for LSTM members: every member's minibatch through one stacked LSTM.

    Each step follows one :func:`_stacked_prefix_plan` of all members' minibatches: per token
    position, a batched product of the ``(M, P, H)`` states of the members' distinct prefixes by
    their stacked hidden-to-gate weights, whatever the cells' lengths (a cell's padded slots are
    never read). The input side of the gates, ``embedding(token) W_ih + b_ih + b_hh``, takes one of
    8 values per token kind, so it is a ``(M, 8, 4H)`` table per step, read by index: half of a
    per-cell LSTM step's work. The first token starts from a zero state, so it needs no product.
    What is left is the hidden-to-gate products, about ``20 n 4 H^2`` multiply-adds per member and
    step on ``n`` five-block cells (on a loaded 2-core AMD EPYC in float64, CPU time: about 33 s
    for five members, 256 cells, 200 epochs; the members one after another, 57 s).

    The result equals separate fits (the generic :meth:`_NeuralPredictor._fit_members`, which runs
    :class:`_LSTM` itself) up to the order of float64 sums; ``tests/test_predictors.py`` holds the
    two to 1e-9.
    """
    lookback = int(members[0].lookback)
    tokens = _tokens(cells, lookback).reshape(len(cells), -1)
    lengths = 4 * cells.num_blocks.astype(np.int64)
    hidden_size = int(members[0].hidden)

    def loss_of(params, rows, weights, targets):
        embed_in, embed_op, w_ih, w_hh, b_ih, b_hh, w_out, b_out = params
        M = len(rows)
        used = weights.cpu().numpy() > 0
        member = np.broadcast_to(np.arange(M)[:, None], rows.shape)[used]
        chosen, chosen_weight = rows[used], weights[torch.from_numpy(used)]
        plan = _stacked_prefix_plan(tokens[chosen], lengths[chosen], member, M)
        bias = b_ih + b_hh
        gate_tables = [torch.baddbmm(bias, embed, w_ih) for embed in (embed_in, embed_op)]
        loss = 0.0
        h = c = None
        for position, (step_tokens, parents, ended, owners, slots) in enumerate(plan):
            table = gate_tables[position % 4 >= 2]
            # a one-hot product reads the table: its backward is a product too, where a gather's
            # is a slow scatter-add
            gates = torch.bmm(nn.functional.one_hot(torch.from_numpy(step_tokens), table.shape[1]).to(table.dtype),
                              table)
            if h is not None:
                rows = torch.from_numpy(parents)
                shape = (M, -1, hidden_size)
                h = h.reshape(-1, hidden_size).index_select(0, rows).view(shape)
                c = c.reshape(-1, hidden_size).index_select(0, rows).view(shape)
                gates = torch.baddbmm(gates, h, w_hh)
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(i) * torch.tanh(g) if c is None else torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            if len(ended):
                owner = torch.from_numpy(owners)
                final = h[owner, torch.from_numpy(slots)]
                logits = (final.unsqueeze(1) @ w_out[owner]).reshape(-1) + b_out[owner].reshape(-1)
                cell = torch.from_numpy(ended)
                loss = loss + ((torch.sigmoid(logits) - targets[torch.from_numpy(chosen[ended])]).abs()
                               * chosen_weight[cell]).sum()
        return loss

    def gradients_of(params, rows, weights, targets):
        return torch.autograd.grad(loss_of(params, rows, weights, targets), params)

    _fit_stack(members, cells, target, subsets, gradients_of)


class _FusedAdam:
    """``torch.optim.Adam(params, lr, fused=True)`` (no weight decay) as one call per step.

    The same fused kernel, ``torch._fused_adam_``, on the same state (moments like the parameters,
    a float32 step count), without the optimiser's per-step Python (state checks, grouping the
    tensors by device and dtype, profiler hooks): about 0.3 ms a step on a 2-core Intel VM, a
    tenth of a small ensemble fit's step, and Python time the fit's threads hold the interpreter
    lock for. The kernel is private to torch, which ``constraints.txt`` pins;
    ``tests/test_predictors.py`` holds this class to ``torch.optim.Adam`` bit for bit, so a torch
    that changes it fails there.
    """

    def __init__(self, params: list[torch.Tensor], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]

    @torch.no_grad()
    def step(self, gradients: list[torch.Tensor], active: np.ndarray | None = None) -> None:
        """One Adam step of every parameter along ``gradients`` (``active`` is ignored: every
        member steps)."""
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(self.params, gradients, self.first, self.second, [], self.steps, lr=self.lr,
                           beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0, eps=self.eps,
                           amsgrad=False, maximize=False)


class _MaskedAdam:
    """Adam (PyTorch's, no weight decay) over stacked member weights, with per-member learning
    rates and step counts: ``step(gradients, active)`` updates only the members marked active,
    leaving the others' weights and moments as they were, as their own optimisers would (they had
    no step)."""

    def __init__(self, params: list[torch.Tensor], rates: np.ndarray,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.rates, self.betas, self.eps = params, np.asarray(rates, np.float64), betas, eps
        self.steps = np.zeros(len(rates), np.int64)
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]

    def step(self, gradients: list[torch.Tensor], active: np.ndarray) -> None:
        """One Adam step along ``gradients`` for the members where ``active`` is true."""
        beta1, beta2 = self.betas
        self.steps += active
        correction1 = 1 - beta1 ** self.steps
        correction2 = np.sqrt(1 - beta2 ** self.steps)
        size = np.where(active, self.rates / np.where(active, correction1, 1.0), 0.0)
        with torch.no_grad():
            for param, grad, first, second in zip(self.params, gradients, self.first, self.second):
                shape = (len(active),) + (1,) * (param.dim() - 1)
                keep = torch.from_numpy(active).reshape(shape)
                first.copy_(torch.where(keep, first.lerp(grad, 1 - beta1), first))
                second.copy_(torch.where(keep, second * beta2 + (1 - beta2) * grad * grad, second))
                denom = second.sqrt() / torch.from_numpy(np.where(active, correction2, 1.0)).reshape(shape)
                param.sub_(torch.from_numpy(size).reshape(shape) * first / (denom + self.eps))


class LSTMPredictor(_NeuralPredictor):
    """PNAS's RNN accuracy predictor: an LSTM over the cell's ``4b`` tokens.

    Parameters are those of :class:`MLPPredictor`, except that ``hidden`` is
    the LSTM's hidden size (PNAS: 100). Training (:func:`_fit_lstm_stack`)
    and prediction (:func:`_prefix_plan`) both run the LSTM one token
    position at a time, once per distinct prefix. On a busy 2-core CPU it predicts about
    5 x 10^4 five-block candidates a second (see the benchmarks), roughly
    15 times slower than the MLP.
    """

    _module_class = _LSTM
    # larger chunks let more candidates share prefixes
    _predict_chunk = 16384

    @classmethod
    def _fit_members(cls, members, cells, target, subsets):
        """All members as one stacked model (:func:`_fit_lstm_stack`)."""
        _fit_lstm_stack(members, cells, target, subsets)


    def _train_logits(self, cells: CellBatch) -> torch.Tensor:
        plan = _prefix_plan(_tokens(cells, self.lookback), cells.num_blocks, self.device)
        return self.module_(plan, len(cells))


class EnsemblePredictor(RegressorMixin, BaseEstimator):
    """PNAS's ensemble: ``n_members`` clones of ``base``, each fit from scratch on part of the data.

    The folds come from ``KFold(n_members, shuffle=True, random_state=seed)``;
    member ``k`` leaves out fold ``k`` (with 5 members each sees 4/5 of the
    cells) and gets its own seed, derived from ``seed`` and ``k`` (``base``'s
    own seed is replaced). ``predict`` averages the members' predictions.

    Parameters
    ----------
    base:
        an :class:`MLPPredictor` or :class:`LSTMPredictor`; it is cloned,
        never fitted itself.
    n_members:
        number of members and folds (PNAS: 5); at least 2.
    seed:
        seeds the folds and the members.
    """

    def __init__(self, base: _NeuralPredictor, n_members: int = 5, seed: int = 0) -> None:
        self.base = base
        self.n_members = n_members
        self.seed = seed

    def _member(self, k: int) -> _NeuralPredictor:
        """Unfitted member ``k``: ``base`` with a seed hashed from ``(seed, k)``."""
        seed = int(np.random.SeedSequence([int(self.seed), k]).generate_state(1)[0])
        return clone(self.base).set_params(seed=seed)

    def _space(self) -> CellSpace:
        """The cell space of ``base``'s hyper-parameters."""
        return _space(self.base.max_blocks, self.base.lookback)

    def fit(self, X: Any, y: Any) -> "EnsemblePredictor":
        """Fit every member on its ``n_members - 1`` folds of ``(X, y)`` (MLP members together, as one
        stacked model: see :func:`_fit_mlp_stack`)."""
        check_integer("n_members", self.n_members, minimum=2)
        cells = _as_cells(X, self._space())
        target = _as_targets(y, len(cells))
        if len(cells) < self.n_members:
            raise ValueError(
                f"an ensemble of {self.n_members} members needs at least {self.n_members} cells, "
                f"got {len(cells)}"
            )
        folds = KFold(n_splits=self.n_members, shuffle=True, random_state=int(self.seed))
        self.train_indices_ = [train for train, _ in folds.split(np.arange(len(cells)))]
        members = [self._member(k) for k in range(self.n_members)]
        members[0]._check_params()  # the members share every hyper-parameter but the seed
        type(members[0])._fit_members(members, cells, target, self.train_indices_)
        self.members_ = members
        self.n_features_in_ = self.members_[0].n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Mean of the members' predicted accuracies, one per cell of ``X``, on the
        :data:`~harness.resolution.ACCURACY_RESOLUTION` grid (see the module docstring)."""
        check_is_fitted(self, "members_")
        cells = _as_cells(X, self._space())
        return on_grid(np.mean([member._predict_cells(cells) for member in self.members_], axis=0),
                       ACCURACY_RESOLUTION)

    def get_state(self) -> dict[str, np.ndarray]:
        """Every member's state under ``member<k>.``, plus its training indices."""
        check_is_fitted(self, "members_")
        state = {}
        for k, (member, train) in enumerate(zip(self.members_, self.train_indices_)):
            state.update({f"member{k}.{key}": value for key, value in member.get_state().items()})
            state[f"member{k}.train_indices"] = train.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "EnsemblePredictor":
        """Restore :meth:`get_state`'s arrays into ``n_members`` fresh clones of ``base``."""
        prefixes = {key.split(".", 1)[0] for key in state}
        expected = {f"member{k}" for k in range(int(self.n_members))}
        if prefixes != expected:
            raise ValueError(f"state has members {sorted(prefixes)}, expected {sorted(expected)}")
        members, train_indices = [], []
        for k in range(int(self.n_members)):
            own = {
                key.split(".", 1)[1]: value
                for key, value in state.items()
                if key.startswith(f"member{k}.")
            }
            if "train_indices" not in own:
                raise ValueError(f"state lacks member{k}.train_indices")
            train_indices.append(np.asarray(own.pop("train_indices")))
            members.append(self._member(k).set_state(own))
        self.members_, self.train_indices_ = members, train_indices
        self.n_features_in_ = members[0].n_features_in_
        return self


def make_predictor(name: str, **kwargs: Any) -> _NeuralPredictor | EnsemblePredictor:
    """One of PNAS Table 1's four predictors by name (see :data:`PREDICTOR_NAMES`).

    ``kwargs`` go to the model's constructor; for ensembles ``n_members`` and
    ``seed`` go to :class:`EnsemblePredictor` and the rest to the base model.
    """
    if name not in PREDICTOR_NAMES:
        raise ValueError(f"unknown predictor {name!r}; choose one of {PREDICTOR_NAMES}")
    model, _, ensemble = name.partition("-")
    cls = MLPPredictor if model == "mlp" else LSTMPredictor
    if not ensemble:
        return cls(**kwargs)
    outer = {key: kwargs.pop(key) for key in ("n_members", "seed") if key in kwargs}
    return EnsemblePredictor(cls(**kwargs), **outer)


# ---------------------------------------------------------------------------- NAS-Bench-201
#: Predictors :func:`nb201_accuracy_predictor` builds.
NB201_PREDICTORS: tuple[str, ...] = ("mlp", "mlp-ensemble", "xgboost", "ridge", "ridge-ensemble")

#: The MLP: PNAS's two hidden layers of 100, Adam, a fixed budget of epochs in minibatches of 32.
#: The L2 penalty (scikit-learn's ``alpha``) was chosen in a pilot on CIFAR-10 (K = 256 random
#: cells, two seeds) among 1e-4, 1e-2 and 0.1: weaker penalties overfit the 256 cells
#: (Kendall tau 0.3-0.4 on the unseen cells, against 0.55-0.6 with 0.1).
MLP_SETTINGS: dict[str, Any] = {"hidden_layer_sizes": (100, 100), "alpha": 0.1, "batch_size": 32, "max_iter": 100}

#: PNAS's ensemble: 5 members, each fitted on a different random 4/5 of the training cells.
ENSEMBLE_MEMBERS, ENSEMBLE_FRACTION = 5, 0.8

#: XGBoost with fixed settings usual for a few hundred rows (not tuned on the test cells).
XGB_SETTINGS: dict[str, Any] = {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.05}


def nb201_accuracy_predictor(name: str, seed: int = 0) -> BaseEstimator:
    """The unfitted accuracy predictor ``name`` (:data:`NB201_PREDICTORS`) on NB201 cell matrices.

    The PNAS predictors embed PNAS tokens and cannot read NB201 cells, so
    their idea is transposed. PNAS's MLP embeds each token, averages the
    embeddings and applies two hidden layers; on NB201 the natural token is
    an (edge, operator) pair, and averaging learned embeddings of the 6 edge
    tokens is a linear map of the one-hot encoding, so the model is an MLP
    on :class:`NB201Features` (one-hot) with PNAS's layer sizes
    (:data:`MLP_SETTINGS`; scikit-learn's squared loss and linear output
    replace PNAS's L1 loss and sigmoid, which matter little for ranking).
    The RNN is left out: a fixed-length, fixed-position sequence of 6
    tokens gives it nothing the MLP lacks. ``"mlp-ensemble"`` is PNAS's
    5-member ensemble (random 4/5 subsets, averaged), ``"xgboost"`` a
    strong tabular baseline (:data:`XGB_SETTINGS`) and ``"ridge"`` the
    additive model, one value per (edge, operator). ``"ridge-ensemble"`` is
    PNAS's ensemble rule with ridge members: as cheap as ridge (the NB201
    searches fit hundreds of predictors) and, unlike ridge alone, seeded
    (the members' subsets), so the searches' seeds change their choices.
    """
    return tabular_accuracy_model(name, seed, NB201Features("onehot"))


def tabular_accuracy_model(name: str, seed: int, features: BaseEstimator) -> BaseEstimator:
    """The model ``name`` of :data:`NB201_PREDICTORS` (see :func:`nb201_accuracy_predictor`) on ``features``,
    a transformer of some space's cell matrix (NB201's one-hot, or an NB101 encoding), with its
    predictions on the :data:`~harness.resolution.ACCURACY_RESOLUTION` grid
    (:class:`~harness.resolution.OnGrid`)."""
    if name not in NB201_PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose one of {NB201_PREDICTORS}")
    if name == "xgboost":
        regressor = XGBRegressor(**XGB_SETTINGS, n_jobs=1, random_state=seed)
    elif name.startswith("ridge"):
        regressor = Ridge(alpha=RIDGE_ALPHA)
    else:
        # a fixed budget of epochs: tol=0 and patience beyond max_iter turn early stopping off
        regressor = MLPRegressor(**MLP_SETTINGS, tol=0.0, n_iter_no_change=MLP_SETTINGS["max_iter"] + 1,
                                 random_state=seed)
    model = Pipeline([("features", features), ("regressor", regressor)])
    if name.endswith("-ensemble"):
        model = BaggingRegressor(model, n_estimators=ENSEMBLE_MEMBERS, max_samples=ENSEMBLE_FRACTION,
                                 bootstrap=False, random_state=seed)
    # predictions on the grid, as PNAS's predictors give theirs: ties on paper stay ties on any machine
    return OnGrid(model, ACCURACY_RESOLUTION)



def fit_quietly(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A fitted clone of ``model``, with three expected warnings silenced.

    The MLPs train a fixed number of epochs, so "maximum iterations reached"
    is their normal end; a training set smaller than a minibatch (25
    cells at the smallest smaller-to-larger level) is one batch, as meant; and
    an ensemble's members fit on 4/5 of the cells however few there are (6 of
    8 at the smallest training-set size), which scikit-learn's bagging calls a
    low number of bootstrap samples.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size` less than 1 or larger than sample size")
        warnings.filterwarnings("ignore", message="Using the fractional value max_samples=")
        return clone(model).fit(X, y)


class NB201Predictor(RegressorMixin, BaseEstimator):
    """A NAS-Bench-201 accuracy predictor on batches, with the checkpoint methods the searches use.

    ``model`` names one of :func:`nb201_accuracy_predictor`'s models (fitted
    through :func:`fit_quietly`). ``X`` is an :class:`~harness.nb201_space.NB201Batch`,
    an ``(n, 6)`` array or the ``(n, 7)`` matrix of :meth:`NB201Space.to_matrix`.
    scikit-learn's models have no weight export without pickle, so the
    checkpoint state is the training data itself: ``set_state`` refits on
    it, which gives the same model (every fit is seeded by ``seed``).

    Parameters
    ----------
    model:
        a name of :data:`NB201_PREDICTORS`.
    seed:
        seeds the model (and the ensemble's subsets).
    """

    def __init__(self, model: str = "ridge", seed: int = 0) -> None:
        self.model = model
        self.seed = seed

    @staticmethod
    def _matrix(X: Any, where: str) -> np.ndarray:
        ops = np.asarray(X)
        if ops.ndim == 2 and ops.shape[1] == 1 + _NB201_EDGES:
            ops = nb201_cells(ops, where)
        return _NB201_SPACE.to_matrix(_NB201_SPACE.batch(np.asarray(ops)))

    def _unfitted_model(self) -> BaseEstimator:
        """The model ``fit`` clones and fits (subclasses for other spaces change its features)."""
        return nb201_accuracy_predictor(self.model, int(self.seed))

    def fit(self, X: Any, y: Any) -> "NB201Predictor":
        """Fit the model on the cells of ``X`` and accuracies ``y`` (fractions in [0, 1])."""
        if self.model not in NB201_PREDICTORS:
            raise ValueError(f"NB201Predictor model must be one of {NB201_PREDICTORS}, got {self.model!r}")
        matrix = self._matrix(X, "NB201Predictor.fit X")
        target = _as_targets(y, len(matrix))
        if len(matrix) < ENSEMBLE_MEMBERS:
            raise ValueError(f"NB201Predictor needs at least {ENSEMBLE_MEMBERS} cells, got {len(matrix)}")
        self.model_ = fit_quietly(self._unfitted_model(), matrix, target)
        self.train_matrix_, self.train_target_ = matrix, target
        self.n_features_in_ = matrix.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted accuracies, one per cell of ``X``, as float64."""
        check_is_fitted(self, "model_")
        return np.asarray(self.model_.predict(self._matrix(X, "NB201Predictor X")), dtype=np.float64)

    def get_state(self) -> dict[str, np.ndarray]:
        """The training matrix and targets (see the class docstring)."""
        check_is_fitted(self, "model_")
        return {"X": self.train_matrix_.copy(), "y": self.train_target_.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> "NB201Predictor":
        """Refit on :meth:`get_state`'s training data."""
        if set(state) != {"X", "y"}:
            raise ValueError(f"NB201Predictor state must have the keys X and y, got {sorted(state)}")
        return self.fit(np.asarray(state["X"]), np.asarray(state["y"]))


__all__ = [
    "EnsemblePredictor",
    "LSTMPredictor",
    "MLPPredictor",
    "NB201Predictor",
    "NB201_PREDICTORS",
    "OUTPUT_BIAS_INIT",
    "PREDICTOR_NAMES",
    "fit_quietly",
    "make_predictor",
    "nb201_accuracy_predictor",
    "tabular_accuracy_model",
]
