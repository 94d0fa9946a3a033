"""The analytic cost features against networks built and counted here (parameters by ``p.numel()``,
FLOPs by forward hooks on every convolution and linear layer), and against the measured table's
recorded parameter counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from backends.network import NetworkConfig, build_network
from backends.table import EMBEDDED_TABLE
from harness import CellSpace
from harness.cost_features import (CostFeatures, ImageTask, NB101Network, NB201Network, nb101_costs, nb201_costs,
                                   pnas_costs)
from harness.nb101_space import NB101Space
from harness.nb201_space import NB201_OPERATORS, NB201Space


def count(model: nn.Module, image: torch.Tensor) -> tuple[int, int]:
    """Parameters and multiply-accumulates of one image through ``model``, by forward hooks."""
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            macs.append(output[0].numel() * module.in_channels // module.groups * kernel)
        elif isinstance(module, nn.Linear):
            macs.append(module.in_features * module.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(image)
    for handle in handles:
        handle.remove()
    return sum(p.numel() for p in model.parameters()), sum(macs)


# ---------------------------------------------------------------------------- NAS-Bench-101, built here
def conv_bn_relu(c_in, c_out, kernel):
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())


def vertex_channels(c_in, c_out, matrix):
    """NAS-Bench-101's compute_vertex_channels, written out on the compact matrix."""
    m = len(matrix)
    channels = [0] * m
    channels[0], channels[-1] = c_in, c_out
    if m == 2:
        return channels
    in_degree = matrix[1:].sum(axis=0)
    interior, correction = divmod(c_out, int(in_degree[-1]))
    for v in range(1, m - 1):
        if matrix[v, -1]:
            channels[v] = interior + (1 if correction else 0)
            correction -= 1 if correction else 0
    for v in range(m - 3, 0, -1):
        if not matrix[v, -1]:
            for dst in range(v + 1, m - 1):
                if matrix[v, dst]:
                    channels[v] = max(channels[v], channels[dst])
    return channels


class Module101(nn.Module):
    def __init__(self, matrix, ops, c_in, c_out):
        super().__init__()
        self.matrix, self.ops = np.array(matrix), ops
        self.channels = vertex_channels(c_in, c_out, self.matrix)
        m = len(ops)
        self.project = nn.ModuleDict({str(t): conv_bn_relu(c_in, self.channels[t], 1)
                                      for t in range(1, m) if self.matrix[0, t]})
        kernels = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1}
        self.op = nn.ModuleDict({str(t): conv_bn_relu(self.channels[t], self.channels[t], kernels[ops[t]])
                                 if ops[t] in kernels else nn.MaxPool2d(3, 1, 1) for t in range(1, m - 1)})

    def forward(self, x):
        m = len(self.ops)
        tensors, concat = [x], []
        for t in range(1, m - 1):
            parts = [tensors[s][:, : self.channels[t]] for s in range(1, t) if self.matrix[s, t]]
            if self.matrix[0, t]:
                parts.append(self.project[str(t)](x))
            tensors.append(self.op[str(t)](sum(parts)))
            if self.matrix[t, -1]:
                concat.append(tensors[t])
        out = torch.cat(concat, 1) if concat else 0
        if self.matrix[0, -1]:
            out = out + self.project[str(m - 1)](x)
        return out


class Network101(nn.Module):
    def __init__(self, matrix, ops, stem=128, classes=10):
        super().__init__()
        layers, channels, previous = [conv_bn_relu(3, stem, 3)], stem, stem
        for stack in range(3):
            if stack:
                layers.append(nn.MaxPool2d(2, 2))
                channels *= 2
            for _ in range(3):
                layers.append(Module101(matrix, ops, previous, channels))
                previous = channels
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        return self.classifier(self.body(x).mean(dim=(2, 3)))


NB101_CELLS = [
    "input|output;0>1",
    "input|maxpool3x3|output;0>1,0>2,1>2",
    "input|conv1x1-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|maxpool3x3|output;"
    "0>1,0>2,0>3,0>5,1>6,2>6,3>4,4>6,5>6",  # NAS-Bench-101's README example
    "input|conv3x3-bn-relu|conv3x3-bn-relu|conv1x1-bn-relu|maxpool3x3|conv3x3-bn-relu|output;"
    "0>1,1>2,2>3,3>4,4>5,5>6,1>6,0>3",
    "input|conv3x3-bn-relu|conv1x1-bn-relu|maxpool3x3|output;0>1,0>2,1>3,2>3,3>4,1>4,2>4",  # 3 feed out
]


@pytest.mark.parametrize("text", NB101_CELLS)
def test_nb101_costs_match_the_network_built_here(text):
    space = NB101Space()
    cells = space.parse_many([text])
    matrix, ops = (x[0] for x in space.graphs(cells))
    torch.manual_seed(0)
    expected = count(Network101(matrix, ops), torch.zeros(1, 3, 32, 32))
    params, macs = nb101_costs(cells)
    assert (int(params[0]), int(macs[0])) == expected


def test_nb101_costs_follow_the_network_settings():
    cells = NB101Space().parse_many([NB101_CELLS[2]])
    small = nb101_costs(cells, NB101Network(stem_channels=16, task=ImageTask(num_classes=100)))
    matrix, ops = (x[0] for x in NB101Space().graphs(cells))
    assert (int(small[0][0]), int(small[1][0])) == count(Network101(matrix, ops, stem=16, classes=100),
                                                         torch.zeros(1, 3, 32, 32))


# ---------------------------------------------------------------------------- PNAS / POPNAS
PNAS_CELLS = ["(-1,sep3x3,-2,identity)", "(-2,sep5x5,-2,maxpool3x3)(0,dilconv3x3,-1,conv1x7-7x1)",
              "(-1,sep7x7,-1,avgpool3x3)(-2,identity,-1,identity)(1,sep3x3,0,maxpool3x3)"]


@pytest.mark.parametrize("config", [NetworkConfig(), NetworkConfig(combiner="concat", reduction="popnas", filters=8),
                                    NetworkConfig(filters=8, cells_per_stage=1)])
@pytest.mark.parametrize("task", [ImageTask(), ImageTask(image_size=7, in_channels=1)])
def test_pnas_costs_match_backends_network(config, task):
    space = CellSpace.pnas(max_blocks=3)
    cells = space.concat([space.empty_cells(1), space.parse_many(PNAS_CELLS)])
    params, macs = pnas_costs(cells, config, task)
    for i in range(len(cells)):
        model = build_network(cells[i], config, task.in_channels, task.num_classes)
        expected = count(model, torch.zeros(1, task.in_channels, task.image_size, task.image_size))
        assert (int(params[i]), int(macs[i])) == expected, space.format(cells[i])


@pytest.mark.skipif(not EMBEDDED_TABLE.exists(), reason="no embedded measured table")
def test_pnas_parameter_counts_match_the_measured_tables_recorded_ones():
    table = pd.read_parquet(EMBEDDED_TABLE)
    space = CellSpace.pnas(max_blocks=5)
    features = CostFeatures(space="pnas", network={"filters": 8, "cells_per_stage": 1, "image_size": 8,
                                                   "in_channels": 1})
    matrix = space.to_matrix(space.parse_many(table["cell"]))
    mparams = features.fit_transform(matrix)[:, 0]
    np.testing.assert_allclose(mparams * 1e6, table["params"].to_numpy(), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- NAS-Bench-201, built here
def relu_conv_bn(c_in, c_out, kernel, stride=1):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Cell201(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        make = {"none": lambda: None, "skip_connect": nn.Identity, "avg_pool_3x3": lambda: nn.AvgPool2d(3, 1, 1),
                "nor_conv_1x1": lambda: relu_conv_bn(c, c, 1), "nor_conv_3x3": lambda: relu_conv_bn(c, c, 3)}
        self.ops = ops
        self.edges = nn.ModuleList([make[NB201_OPERATORS[o]]() or nn.Identity() for o in ops])

    def forward(self, x):
        nodes = [x]
        pairs = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[s]) * (self.ops[e] != 0)
                             for e, (s, t) in enumerate(pairs) if t == target))
        return nodes[3]


class Residual(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.a, self.b = relu_conv_bn(c_in, c_out, 3, 2), relu_conv_bn(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.shortcut(x)


class Network201(nn.Module):
    def __init__(self, ops, classes=10):
        super().__init__()
        layers, c = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)], 16
        for stage in range(3):
            if stage:
                layers.append(Residual(c, 2 * c))
                c *= 2
            layers += [Cell201(ops, c) for _ in range(5)]
        layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def test_nb201_costs_match_the_network_built_here():
    ops = NB201Space().sample(6, None, seed=0).ops
    ops = np.concatenate([ops, np.full((1, 6), 3)])  # the all-3x3 cell: 1,531,546 parameters, as NAS-Bench-201's
    params, macs = nb201_costs(ops)
    for i, cell in enumerate(ops):
        assert (int(params[i]), int(macs[i])) == count(Network201(list(cell)), torch.zeros(1, 3, 32, 32))
    assert params[-1] == 1_531_546
    imagenet = nb201_costs(ops, NB201Network(task=ImageTask(image_size=16, num_classes=120)))
    assert (int(imagenet[0][-1]), int(imagenet[1][-1])) == count(Network201(list(ops[-1]), 120),
                                                                  torch.zeros(1, 3, 16, 16))


# ---------------------------------------------------------------------------- the transformer
def test_cost_features_transformer_contract():
    from sklearn.base import clone

    space = NB101Space(max_vertices=6)
    cells = space.sample(50, None, seed=1)
    features = CostFeatures(space="nb101")
    out = clone(features).fit_transform(space.to_matrix(cells))
    assert out.shape == (50, 2) and (out > 0).all()
    np.testing.assert_allclose(out * 1e6, np.stack(nb101_costs(cells), axis=1))
    with pytest.raises(ValueError, match="cost features know the spaces"):
        CostFeatures(space="darts").fit(space.to_matrix(cells))
    with pytest.raises(ValueError, match="stem_width"):
        CostFeatures(space="nb101", network={"stem_width": 3}).fit(space.to_matrix(cells))
    with pytest.raises(TypeError):
        CostFeatures("nb101")  # keyword-only hyper-parameters
