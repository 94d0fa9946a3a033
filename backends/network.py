"""From a cell to a child CNN (PNAS section 3.2, POPNAS section 3.1.1), in PyTorch.

Network
    A 3x3 stem convolution (+ BN) to ``F`` channels, then three stages of
    ``N`` cells with a stride-2 reduction between stages, ``F`` doubling at
    each reduction; then ReLU, global average pooling and a linear layer
    (the softmax lives in the loss). The reduction is either

    * ``"pnas"``: the cell itself applied with stride 2 (PNAS emulates
      NASNet's reduction cell this way): the operators reading a cell input
      use stride 2, those reading a block output stride 1; or
    * ``"popnas"``: a plain stride-2 3x3 convolution (+ BN), the "2 extra
      cells" of POPNAS's ``3N + 2``.

    Either way the network has ``3N + 2`` layers after the stem, and every
    layer's output is the next layer's input ``-1`` and the one after's
    input ``-2`` (a POPNAS reduction convolution counts as a layer). The
    first cell reads the stem's output as both ``-1`` and ``-2``.

Cell
    Cell inputs are brought to the cell's ``F`` channels and resolution
    only where they differ (PNAS: "1x1 convolutions are also inserted when
    tensor sizes mismatch"): ReLU-1x1 conv-BN, with stride 2 when the
    previous-previous output has twice the resolution (after a reduction).
    Each block applies its two operators and combines them: ``"add"`` sums
    them (``F`` channels); ``"concat"`` concatenates them (``2F`` channels;
    an operator reading a concat block's output maps ``2F`` to ``F``). The
    cell output concatenates the outputs of the blocks no later block
    reads (NASNet/PNAS); when that is not ``F`` channels (several loose
    blocks, or any concat block) a ReLU-1x1 conv-BN maps it back to ``F``,
    so every cell hands ``F`` channels on.

Operators (ReLU-conv-BN order throughout, as NASNet/PNAS)
    ``sepKxK``: two repetitions of ReLU, depthwise KxK, pointwise 1x1, BN;
    ``conv1x7-7x1``: ReLU, 1x7 conv, 7x1 conv, BN; ``identity``: nothing,
    or ReLU-1x1 conv-BN when channels or stride change; ``avgpool3x3`` /
    ``maxpool3x3``: stride-1 (or 2) pooling with padding 1 (average pooling
    does not count the padding), then 1x1 conv-BN when channels change;
    ``dilconv3x3``: ReLU, full 3x3 conv with dilation 2, BN (the papers
    say "3x3 dilated convolution", not separable). All stride-2 operators
    map ``H`` to ``ceil(H / 2)``, so odd sizes (Fashion-MNIST's 7x7) line up.

The empty cell (b = 0, POPNAS's initial-thrust row) gives a network of
global average pooling and the classifier on the raw input, nothing else.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from harness.network_config import NUM_STAGES, NetworkConfig
from harness.operators import PNAS_ORDER
from harness.space import Cell


# ---------------------------------------------------------------------------- operators
def relu_conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """ReLU, 1x1 convolution, BN: the projection that fixes channel or resolution mismatches."""
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
    )


def _separable(kernel: int) -> Callable[[int, int, int], nn.Module]:
    def build(c_in: int, c_out: int, stride: int) -> nn.Module:
        layers: list[nn.Module] = []
        for c, s in ((c_in, stride), (c_out, 1)):
            layers += [
                nn.ReLU(),
                nn.Conv2d(c, c, kernel, stride=s, padding=kernel // 2, groups=c, bias=False),
                nn.Conv2d(c, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            ]
        return nn.Sequential(*layers)

    return build


def _conv_1x7_7x1(c_in: int, c_out: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(c_out, c_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(c_out),
    )


def _identity(c_in: int, c_out: int, stride: int) -> nn.Module:
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return relu_conv_bn(c_in, c_out, stride)


def _pooling(pool: type[nn.Module]) -> Callable[[int, int, int], nn.Module]:
    def build(c_in: int, c_out: int, stride: int) -> nn.Module:
        kwargs = {"count_include_pad": False} if pool is nn.AvgPool2d else {}
        layers: list[nn.Module] = [pool(3, stride=stride, padding=1, **kwargs)]
        if c_in != c_out:
            layers += [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*layers)

    return build


def _dilated(c_in: int, c_out: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=2, dilation=2, bias=False),
        nn.BatchNorm2d(c_out),
    )


#: Operator name -> builder ``(c_in, c_out, stride) -> module``.
OPERATIONS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "sep3x3": _separable(3),
    "sep5x5": _separable(5),
    "sep7x7": _separable(7),
    "conv1x7-7x1": _conv_1x7_7x1,
    "identity": _identity,
    "avgpool3x3": _pooling(nn.AvgPool2d),
    "maxpool3x3": _pooling(nn.MaxPool2d),
    "dilconv3x3": _dilated,
}


def make_operation(name: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """The operator ``name`` mapping ``c_in`` to ``c_out`` channels with ``stride`` (1 or 2)."""
    if name not in OPERATIONS:
        raise ValueError(f"unknown operator {name!r}; known operators: {', '.join(PNAS_ORDER)}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    return OPERATIONS[name](c_in, c_out, stride)


# ---------------------------------------------------------------------------- layers
class CellLayer(nn.Module):
    """One copy of a cell: reads the two previous layers' outputs, returns ``filters`` channels.

    Parameters
    ----------
    cell:
        the blocks ``(in1, op1, in2, op2)`` (global operator ids), at least one.
    combiner:
        ``"add"`` or ``"concat"``.
    prev_channels, prev_prev_channels:
        channels of the inputs ``-1`` and ``-2``.
    prev_prev_stride:
        2 when input ``-2`` has twice the resolution of ``-1``, else 1.
    filters:
        channels of the cell (and of its output).
    stride:
        2 for a PNAS reduction cell, else 1.
    """

    def __init__(
        self,
        cell: Cell,
        combiner: str,
        prev_channels: int,
        prev_prev_channels: int,
        prev_prev_stride: int,
        filters: int,
        stride: int,
    ) -> None:
        super().__init__()
        if not cell.blocks:
            raise ValueError("a cell layer needs at least one block; the empty cell has no cell layers")
        self.combiner = combiner
        self.blocks = cell.blocks
        read = {i for block in cell.blocks for i in (block[0], block[2])}
        self.preprocess_prev = (
            relu_conv_bn(prev_channels, filters) if -1 in read and prev_channels != filters else nn.Identity()
        )
        self.preprocess_prev_prev = (
            relu_conv_bn(prev_prev_channels, filters, prev_prev_stride)
            if -2 in read and (prev_prev_channels != filters or prev_prev_stride != 1)
            else nn.Identity()
        )
        block_channels = filters if combiner == "add" else 2 * filters
        branches = []
        for in1, op1, in2, op2 in cell.blocks:
            for source, op in ((in1, op1), (in2, op2)):
                from_cell_input = source < 0
                branches.append(
                    make_operation(
                        PNAS_ORDER[op],
                        filters if from_cell_input else block_channels,
                        filters,
                        stride if from_cell_input else 1,
                    )
                )
        self.branches = nn.ModuleList(branches)
        self.loose_blocks = tuple(j for j in range(len(cell.blocks)) if j not in read)
        out_channels = block_channels * len(self.loose_blocks)
        self.project = relu_conv_bn(out_channels, filters) if out_channels != filters else nn.Identity()

    def forward(self, prev_prev: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """The cell's output from the outputs of the previous-previous and previous layers."""
        # states[i + 2] is input i: -2, -1, then the blocks in order
        states = [self.preprocess_prev_prev(prev_prev), self.preprocess_prev(prev)]
        for j, (in1, _, in2, _) in enumerate(self.blocks):
            left = self.branches[2 * j](states[in1 + 2])
            right = self.branches[2 * j + 1](states[in2 + 2])
            states.append(left + right if self.combiner == "add" else torch.cat([left, right], dim=1))
        loose = [states[j + 2] for j in self.loose_blocks]
        return self.project(loose[0] if len(loose) == 1 else torch.cat(loose, dim=1))


class ReductionConv(nn.Module):
    """POPNAS's reduction layer: a stride-2 3x3 convolution and BN between stages."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, prev_prev: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """The reduced previous output (``prev_prev`` is accepted for a uniform layer signature)."""
        return self.conv(prev)


class ChildNetwork(nn.Module):
    """The child CNN of a cell (see the module docstring); ``forward`` returns class logits."""

    def __init__(self, cell: Cell, config: NetworkConfig, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        if not cell.blocks:
            self.stem: nn.Module = nn.Identity()
            channels = in_channels
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            filters = config.filters
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters)
            )
            # (channels, resolution level) of the last two outputs; the stem feeds both inputs
            prev_prev, prev = (filters, 0), (filters, 0)
            for stage in range(NUM_STAGES):
                if stage:
                    filters *= 2
                    reducing = config.reduction == "pnas"
                    layers.append(
                        self._cell(cell, config, prev, prev_prev, filters, stride=2)
                        if reducing else ReductionConv(prev[0], filters)
                    )
                    prev_prev, prev = prev, (filters, prev[1] + 1)
                for _ in range(config.cells_per_stage):
                    layers.append(self._cell(cell, config, prev, prev_prev, filters, stride=1))
                    prev_prev, prev = prev, (filters, prev[1])
            channels = filters
            self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.layers = nn.ModuleList(layers)
        self.classifier = nn.Linear(channels, num_classes)

    @staticmethod
    def _cell(
        cell: Cell, config: NetworkConfig, prev: tuple[int, int], prev_prev: tuple[int, int],
        filters: int, stride: int,
    ) -> CellLayer:
        return CellLayer(
            cell, config.combiner, prev_channels=prev[0], prev_prev_channels=prev_prev[0],
            prev_prev_stride=2 ** (prev[1] - prev_prev[1]), filters=filters, stride=stride,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, num_classes)`` for images ``x`` of shape ``(n, C, H, W)``."""
        prev_prev = prev = self.stem(x)
        for layer in self.layers:
            prev_prev, prev = prev, layer(prev_prev, prev)
        return self.classifier(self.head(prev))


def build_network(cell: Cell, config: NetworkConfig, in_channels: int, num_classes: int) -> ChildNetwork:
    """The child CNN of ``cell`` for ``in_channels``-channel images and ``num_classes`` classes."""
    return ChildNetwork(cell, config, in_channels, num_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
