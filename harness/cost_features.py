"""Analytic cost features: the parameter count and FLOPs of the network a cell builds.

Counts are computed from the architecture rules, without building a network,
vectorised over cells:

* parameters: every trainable weight (convolution kernels, BatchNorm scale
  and shift, the classifier's weights and bias), as
  ``sum(p.numel() for p in model.parameters())`` counts them;
* FLOPs: multiply-accumulates of the convolutions and the classifier for one
  image, ``output elements x (input channels / groups) x kernel area`` per
  convolution and ``in x out`` for the classifier (pooling, BatchNorm,
  activations and additions are not counted, the usual convention of
  NAS-Bench-101/201's FLOPs columns).

Networks (all square images)

``nb101`` (:func:`nb101_costs`)
    NAS-Bench-101's: a 3x3 conv-BN-ReLU stem of 128 channels; 3 stacks of 3
    cells, a 2x2 stride-2 max pooling before stacks 2 and 3 doubling the
    channels; global average pooling and a dense classifier. Inside a cell
    the channels follow NAS-Bench-101's ``compute_vertex_channels``: the
    vertices feeding the output split its channels (the remainder going to
    the first ones), every other vertex takes the largest of its successors';
    an edge from the input is a 1x1 conv-BN-ReLU projection to the target's
    channels, other inputs are truncated (no weights); ``conv3x3-bn-relu`` and
    ``conv1x1-bn-relu`` are bias-free convolutions with BatchNorm,
    ``maxpool3x3`` has no weights; an input-output edge adds a projection to
    the cell's output channels.
``pnas`` / ``popnas`` (:func:`pnas_costs`)
    :class:`backends.network.ChildNetwork` for a :class:`~backends.network.NetworkConfig`.
``nb201`` (:func:`nb201_costs`)
    NAS-Bench-201's: a 3x3 conv-BN stem of 16 channels, 3 stages of 5 cells
    (16, 32, 64 channels) with a residual reduction block between stages
    (two ReLU-conv-BN and an average-pool + 1x1 conv shortcut), a final
    BN-ReLU, global pooling and a linear classifier; ``nor_conv_kxk`` is
    ReLU-conv-BN, pooling, skip and none have no weights.

:class:`CostFeatures` is the scikit-learn transformer: cell matrix ->
``[parameters, FLOPs]`` in millions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from harness.nb101_space import INNER_OPERATORS, NB101Batch, NB101_OPERATORS
from harness.nb201_space import NB201_OPERATORS
from harness.operators import PNAS_ORDER
from harness.space import EMPTY, CellBatch

#: Spaces :class:`CostFeatures` knows.
COST_SPACES: tuple[str, ...] = ("nb101", "pnas", "popnas", "nb201")


@dataclass(frozen=True)
class ImageTask:
    """The input images and classes a network is sized for."""

    image_size: int = 32
    in_channels: int = 3
    num_classes: int = 10

    def __post_init__(self) -> None:
        for key in ("image_size", "in_channels", "num_classes"):
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")


def _halve(size: int) -> int:
    """Output size of a stride-2 layer with 'same' padding."""
    return math.ceil(size / 2)


def _conv_bn(c_in, c_out, kernel_area, pixels) -> tuple[Any, Any]:
    """(parameters, MACs) of a bias-free convolution and its BatchNorm at ``pixels`` output positions."""
    return c_in * c_out * kernel_area + 2 * c_out, pixels * c_in * c_out * kernel_area


def _classifier(features: int, task: ImageTask) -> tuple[int, int]:
    return features * task.num_classes + task.num_classes, features * task.num_classes


# ---------------------------------------------------------------------------- NAS-Bench-101
@dataclass(frozen=True)
class NB101Network:
    """NAS-Bench-101's network settings (the paper's defaults)."""

    stem_channels: int = 128
    stacks: int = 3
    cells_per_stack: int = 3
    task: ImageTask = ImageTask()


def nb101_vertex_channels(cells: NB101Batch, in_channels: int, out_channels: int) -> np.ndarray:
    """``(n, V)`` channels of every vertex of a cell with ``in_channels`` in and ``out_channels`` out.

    NAS-Bench-101's ``compute_vertex_channels``, vectorised over cells (slots in canonical order).
    """
    adjacency = cells.adjacency
    n, v = cells.ops.shape
    channels = np.zeros((n, v), np.int64)
    channels[:, 0], channels[:, -1] = in_channels, out_channels
    feeds = adjacency[:, 1 : v - 1, v - 1]
    fan_in = np.maximum(feeds.sum(axis=1), 1)
    interior, remainder = out_channels // fan_in, out_channels % fan_in
    position = np.cumsum(feeds, axis=1)  # 1-based among the vertices that feed the output
    channels[:, 1 : v - 1] = np.where(feeds, interior[:, None] + (position <= remainder[:, None]), 0)
    for t in range(v - 2, 0, -1):  # the others: the largest channels among their successors
        successors = np.where(adjacency[:, t, 1 : v - 1], channels[:, 1 : v - 1], 0).max(axis=1)
        channels[:, t] = np.where(feeds[:, t - 1], channels[:, t], successors)
    return channels


def _nb101_cell_costs(cells: NB101Batch, c_in: int, c_out: int, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    channels = nb101_vertex_channels(cells, c_in, c_out)
    inner, ops = channels[:, 1:-1], cells.ops[:, 1:-1]
    from_input = cells.adjacency[:, 0, 1:-1]
    params = np.zeros(len(cells), np.int64)
    macs = np.zeros(len(cells), np.int64)
    p, m = _conv_bn(c_in, inner, 1, pixels)  # projections of the input to the vertices it feeds
    params += np.where(from_input, p, 0).sum(axis=1)
    macs += np.where(from_input, m, 0).sum(axis=1)
    for name, area in (("conv3x3-bn-relu", 9), ("conv1x1-bn-relu", 1)):
        p, m = _conv_bn(inner, inner, area, pixels)
        is_op = ops == NB101_OPERATORS.index(name)
        params += np.where(is_op, p, 0).sum(axis=1)
        macs += np.where(is_op, m, 0).sum(axis=1)
    p, m = _conv_bn(c_in, c_out, 1, pixels)
    direct = cells.adjacency[:, 0, -1]
    return params + np.where(direct, p, 0), macs + np.where(direct, m, 0)


def nb101_costs(cells: NB101Batch, network: NB101Network = NB101Network()) -> tuple[np.ndarray, np.ndarray]:
    """``(parameters, MACs)`` per cell of NAS-Bench-101's network (module docstring)."""
    task = network.task
    size = task.image_size
    params, macs = _conv_bn(task.in_channels, network.stem_channels, 9, size * size)
    params, macs = np.full(len(cells), params, np.int64), np.full(len(cells), macs, np.int64)
    channels = previous = network.stem_channels
    for stack in range(network.stacks):
        if stack:
            size, channels = _halve(size), channels * 2
        for _ in range(network.cells_per_stack):
            p, m = _nb101_cell_costs(cells, previous, channels, size * size)
            params, macs, previous = params + p, macs + m, channels
    p, m = _classifier(channels, task)
    return params + p, macs + m


# ---------------------------------------------------------------------------- PNAS / POPNAS
def _pnas_operator_costs(c_in: int, c_out: int, stride: int, size: int) -> np.ndarray:
    """``(8, 2)`` (parameters, MACs) of each PNAS operator (``PNAS_ORDER``) on a ``size`` input."""
    out = math.ceil(size / stride)
    table = {}
    for kernel in (3, 5, 7):
        first = (kernel * kernel * c_in + c_in * c_out, out * out * (kernel * kernel * c_in + c_in * c_out))
        second = (kernel * kernel * c_out + c_out * c_out, out * out * (kernel * kernel * c_out + c_out * c_out))
        table[f"sep{kernel}x{kernel}"] = (first[0] + second[0] + 4 * c_out, first[1] + second[1])
    table["conv1x7-7x1"] = (7 * c_in * c_out + 7 * c_out * c_out + 2 * c_out,
                            size * out * 7 * c_in * c_out + out * out * 7 * c_out * c_out)
    projection = _conv_bn(c_in, c_out, 1, out * out)
    table["identity"] = (0, 0) if c_in == c_out and stride == 1 else projection
    for pool in ("avgpool3x3", "maxpool3x3"):
        table[pool] = (0, 0) if c_in == c_out else projection
    table["dilconv3x3"] = _conv_bn(c_in, c_out, 9, out * out)
    return np.array([table[name] for name in PNAS_ORDER], np.int64)


def pnas_costs(cells: CellBatch, config: Any = None, task: ImageTask = ImageTask()
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(parameters, MACs)`` per cell of :class:`backends.network.ChildNetwork` (``config``: its
    :class:`~backends.network.NetworkConfig`, default PNAS's)."""
    from backends.network import NUM_STAGES, NetworkConfig

    config = NetworkConfig() if config is None else config
    n = len(cells)
    blocks = cells.blocks
    used = blocks[..., 1] != EMPTY
    inputs = np.stack([blocks[..., 0], blocks[..., 2]], axis=-1)  # (n, B, 2)
    ops = np.stack([blocks[..., 1], blocks[..., 3]], axis=-1).astype(np.int64)
    branch = used[..., None] & np.ones(2, bool)
    reads_prev = ((inputs == -1) & branch).any(axis=(1, 2))
    reads_prev_prev = ((inputs == -2) & branch).any(axis=(1, 2))
    # loose blocks (read by no later block) are concatenated into the cell's output
    slot = np.arange(blocks.shape[1])
    read = ((inputs[..., None] == slot) & branch[..., None]).any(axis=(1, 2))
    loose = (used & ~read).sum(axis=1)
    block_channels_factor = 1 if config.combiner == "add" else 2

    sizes = [task.image_size]
    for _ in range(NUM_STAGES):
        sizes.append(_halve(sizes[-1]))
    params = np.zeros(n, np.int64)
    macs = np.zeros(n, np.int64)

    def add(p, m, where=True):
        nonlocal params, macs
        params = params + np.where(where, p, 0)
        macs = macs + np.where(where, m, 0)

    def cell_layer(prev, prev_prev, filters, stride):
        size_in, size_out = sizes[prev[1]], sizes[prev[1] + (stride == 2)]
        add(*_conv_bn(prev[0], filters, 1, size_in * size_in), reads_prev & (prev[0] != filters))
        pp_stride = 2 ** (prev[1] - prev_prev[1])
        add(*_conv_bn(prev_prev[0], filters, 1, size_in * size_in),
            reads_prev_prev & ((prev_prev[0] != filters) | (pp_stride != 1)))
        block_channels = filters * block_channels_factor
        from_input = _pnas_operator_costs(filters, filters, stride, size_in)
        from_block = _pnas_operator_costs(block_channels, filters, 1, size_out)
        cost = np.where((inputs < 0)[..., None], from_input[np.maximum(ops, 0)], from_block[np.maximum(ops, 0)])
        add(*np.where(branch[..., None], cost, 0).sum(axis=(1, 2)).T)
        out_channels = block_channels * loose
        add(*_conv_bn(out_channels, filters, 1, size_out * size_out), out_channels != filters)

    filters = config.filters
    add(*_conv_bn(task.in_channels, filters, 9, task.image_size**2))
    prev_prev, prev = (filters, 0), (filters, 0)
    for stage in range(NUM_STAGES):
        if stage:
            filters *= 2
            if config.reduction == "pnas":
                cell_layer(prev, prev_prev, filters, 2)
            else:
                out = sizes[prev[1] + 1]
                add(*_conv_bn(prev[0], filters, 9, out * out))
            prev_prev, prev = prev, (filters, prev[1] + 1)
        for _ in range(config.cells_per_stage):
            cell_layer(prev, prev_prev, filters, 1)
            prev_prev, prev = prev, (filters, prev[1])
    add(*_classifier(filters, task))
    empty = cells.num_blocks == 0  # pooling and the classifier on the raw input, nothing else
    p, m = _classifier(task.in_channels, task)
    return np.where(empty, p, params), np.where(empty, m, macs)


# ---------------------------------------------------------------------------- NAS-Bench-201
@dataclass(frozen=True)
class NB201Network:
    """NAS-Bench-201's network settings (the benchmark's)."""

    stem_channels: int = 16
    cells_per_stage: int = 5
    task: ImageTask = ImageTask()


def nb201_costs(ops: np.ndarray, network: NB201Network = NB201Network()) -> tuple[np.ndarray, np.ndarray]:
    """``(parameters, MACs)`` per cell (``(n, 6)`` operator ids) of NAS-Bench-201's network."""
    ops = np.asarray(ops)
    task, size = network.task, network.task.image_size
    channels = network.stem_channels
    params, macs = _conv_bn(task.in_channels, channels, 9, size * size)
    params, macs = np.full(len(ops), params, np.int64), np.full(len(ops), macs, np.int64)
    for stage in range(3):
        if stage:
            previous, channels, size = channels, channels * 2, _halve(size)
            pixels = size * size
            for p, m in (_conv_bn(previous, channels, 9, pixels), _conv_bn(channels, channels, 9, pixels),
                         (previous * channels, pixels * previous * channels)):  # the shortcut's 1x1 conv
                params, macs = params + p, macs + m
        for name, area in (("nor_conv_1x1", 1), ("nor_conv_3x3", 9)):
            count = (ops == NB201_OPERATORS.index(name)).sum(axis=1) * network.cells_per_stage
            p, m = _conv_bn(channels, channels, area, size * size)
            params, macs = params + count * p, macs + count * m
    p, m = _classifier(channels, task)
    return params + p + 2 * channels, macs + m  # + the final BatchNorm


#: (image size, channels, classes) of the training backend's datasets (``backends.datasets``).
DATASET_IMAGES: dict[str, tuple[int, int, int]] = {"digits": (8, 1, 10), "cifar10": (32, 3, 10),
                                                    "fashion_mnist": (28, 1, 10)}


def training_network(options: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`CostFeatures` ``network`` options of a training backend's recorded options (its
    ``backend_options``: combiner, reduction, filters, cells_per_stage, dataset)."""
    dataset = options.get("dataset", "digits")
    if dataset not in DATASET_IMAGES:
        raise ValueError(f"no image shape known for dataset {dataset!r}; known: {sorted(DATASET_IMAGES)}")
    size, channels, classes = DATASET_IMAGES[dataset]
    network = {k: options[k] for k in ("combiner", "reduction", "filters", "cells_per_stage") if k in options}
    return {**network, "image_size": size, "in_channels": channels, "num_classes": classes}


# ---------------------------------------------------------------------------- transformer
def _network(space: str, network: Mapping[str, Any] | None) -> Any:
    """The network settings object of ``space`` from a mapping of options (image options included)."""
    from backends.network import NetworkConfig

    options = dict(network or {})
    task = ImageTask(**{k: options.pop(k) for k in ("image_size", "in_channels", "num_classes") if k in options})
    try:
        if space == "nb101":
            return NB101Network(**options, task=task)
        if space == "nb201":
            return NB201Network(**options, task=task)
        if space == "popnas":
            options = {"combiner": "concat", "reduction": "popnas", "filters": 32, **options}
        return NetworkConfig(**options), task
    except TypeError as err:
        raise ValueError(f"CostFeatures network options {dict(network or {})!r} for space {space!r}: {err}") from None


def cell_costs(space: str, X: Any, network: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(parameters, MACs)`` of the cells of the cell matrix ``X`` of ``space`` (:data:`COST_SPACES`)."""
    from harness.encodings import nb201_cells
    from harness.nb101_features import nb101_cells
    from harness.space import CellSpace, check_cell_matrix

    if space not in COST_SPACES:
        raise ValueError(f"cost features know the spaces {COST_SPACES}, got {space!r}")
    settings = _network(space, network)
    if space == "nb101":
        return nb101_costs(nb101_cells(X, "CostFeatures X"), settings)
    if space == "nb201":
        return nb201_costs(nb201_cells(X, "CostFeatures X"), settings)
    matrix = np.asarray(X)
    width = matrix.shape[1] if matrix.ndim == 2 else 0
    if width < 5 or (width - 1) % 4:
        raise ValueError(f"CostFeatures X: a {space} cell matrix has 1 + 4 * max_blocks columns, got shape "
                         f"{matrix.shape}")
    cell_space = CellSpace.pnas(max_blocks=(width - 1) // 4, lookback=2)
    cells = cell_space.from_matrix(check_cell_matrix(matrix, cell_space.max_blocks, "CostFeatures X"))
    config, task = settings
    return pnas_costs(cells, config, task)


class CostFeatures(TransformerMixin, BaseEstimator):
    """Cell matrix -> ``[parameters, FLOPs]`` in millions, of the network ``space`` builds.

    Parameters
    ----------
    space:
        ``"nb101"``, ``"pnas"``, ``"popnas"`` or ``"nb201"`` (whose matrix ``X`` is).
    network:
        options of the network (``None``: its defaults): for ``nb101``
        :class:`NB101Network`'s fields, for ``nb201`` :class:`NB201Network`'s,
        for ``pnas``/``popnas`` :class:`backends.network.NetworkConfig`'s
        (POPNAS defaults to ``concat``, ``popnas`` reduction, 32 filters);
        all take ``image_size``, ``in_channels`` and ``num_classes``.
    """

    def __init__(self, *, space: str = "nb101", network: Mapping[str, Any] | None = None):
        self.space = space
        self.network = network

    def fit(self, X, y=None):
        """Check the settings and ``X``; nothing is learned."""
        cell_costs(self.space, X, self.network)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """``(n, 2)``: parameters and FLOPs (multiply-accumulates), in millions."""
        check_is_fitted(self)
        params, macs = cell_costs(self.space, X, self.network)
        return np.stack([params, macs], axis=1).astype(np.float64) / 1e6

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``["mparams", "mflops"]``."""
        return np.array(["mparams", "mflops"], dtype=object)


__all__ = ["COST_SPACES", "CostFeatures", "DATASET_IMAGES", "training_network", "ImageTask", "NB101Network", "NB201Network", "cell_costs",
           "nb101_costs", "nb101_vertex_channels", "nb201_costs", "pnas_costs"]
