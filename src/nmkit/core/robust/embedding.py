"""ReLU networks inside a MILP (the big-M formulation with interval-arithmetic bounds), for HiGHS via SciPy.

An affine expression is a pair (M, c) with M a sparse [k, V] matrix over the model's variables: the value is
M v + c. A hidden ReLU unit with pre-activation bounds [l, u] becomes
    u <= 0: the constant 0;   l >= 0: the pre-activation itself;
    otherwise h in [0, u] and a binary z with  h >= pre,  h <= pre - l (1 - z),  h <= u z,
which is exact: z = 1 forces h = pre >= 0 and z = 0 forces h = 0 >= pre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint
from torch import nn


@dataclass
class Affine:
    matrix: sp.csr_matrix
    constant: np.ndarray

    def widened(self, width: int) -> sp.csr_matrix:
        out = self.matrix.copy()
        out.resize((out.shape[0], width))
        return out.tocsr()


@dataclass
class MILP:
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    integer: list[bool] = field(default_factory=list)
    rows: list[sp.csr_matrix] = field(default_factory=list)
    row_low: list[np.ndarray] = field(default_factory=list)
    row_high: list[np.ndarray] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.low)

    def variables(self, count: int, low, high, integer: bool = False) -> np.ndarray:
        start = self.width
        self.low += list(np.broadcast_to(low, count).astype(float))
        self.high += list(np.broadcast_to(high, count).astype(float))
        self.integer += [integer] * count
        return np.arange(start, start + count)

    def identity(self, indices: np.ndarray) -> Affine:
        k = len(indices)
        return Affine(sp.csr_matrix((np.ones(k), (np.arange(k), indices)), shape=(k, self.width)), np.zeros(k))

    def constrain(self, matrix: sp.spmatrix, low, high) -> None:
        matrix = sp.csr_matrix(matrix)
        matrix.resize((matrix.shape[0], self.width))
        self.rows.append(matrix)
        self.row_low.append(np.broadcast_to(low, matrix.shape[0]).astype(float))
        self.row_high.append(np.broadcast_to(high, matrix.shape[0]).astype(float))

    def scipy_form(self) -> dict:
        rows = [r.copy() for r in self.rows]
        for r in rows:
            r.resize((r.shape[0], self.width))
        return {"integrality": np.array(self.integer, dtype=float), "bounds": Bounds(self.low, self.high),
                "constraints": LinearConstraint(sp.vstack(rows).tocsr(), np.concatenate(self.row_low),
                                                np.concatenate(self.row_high))}


def interval(weight: np.ndarray, bias: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bounds of W a + b over the box low <= a <= high."""
    positive, negative = np.maximum(weight, 0), np.minimum(weight, 0)
    return positive @ low + negative @ high + bias, positive @ high + negative @ low + bias


def linear(expression: Affine, layer: nn.Linear, width: int) -> Affine:
    weight = layer.weight.detach().double().numpy()
    bias = layer.bias.detach().double().numpy() if layer.bias is not None else np.zeros(weight.shape[0])
    return Affine(sp.csr_matrix(weight @ expression.widened(width)), weight @ expression.constant + bias)


def relu(model: MILP, pre: Affine, low: np.ndarray, high: np.ndarray) -> Affine:
    """ReLU of every row of ``pre`` given its bounds; returns the output expression."""
    outputs: list[tuple[str, int]] = []
    for j in range(pre.matrix.shape[0]):
        if high[j] <= 0:
            outputs.append(("zero", j))
        elif low[j] >= 0:
            outputs.append(("pass", j))
        else:
            h = model.variables(1, 0.0, high[j])[0]
            z = model.variables(1, 0.0, 1.0, integer=True)[0]
            row = pre.widened(model.width)[j]
            model.constrain(_unit(h, 1.0, model.width) - row, pre.constant[j], np.inf)  # h >= pre
            model.constrain(_unit(h, 1.0, model.width) - row - _unit(z, low[j], model.width), -np.inf,
                            pre.constant[j] - low[j])  # h <= pre - l (1 - z)
            model.constrain(_unit(h, 1.0, model.width) - _unit(z, high[j], model.width), -np.inf, 0.0)  # h <= u z
            outputs.append(("unit", h))
    matrix = pre.widened(model.width)
    rows = [sp.csr_matrix((1, model.width)) if kind == "zero" else matrix[index] if kind == "pass"
            else _unit(index, 1.0, model.width) for kind, index in outputs]
    constants = [pre.constant[index] if kind == "pass" else 0.0 for kind, index in outputs]
    return Affine(sp.vstack(rows).tocsr(), np.array(constants))


def _unit(index: int, value: float, width: int) -> sp.csr_matrix:
    return sp.csr_matrix(([value], ([0], [index])), shape=(1, width))


def mlp(model: MILP, expression: Affine, low: np.ndarray, high: np.ndarray,
        network: nn.Sequential) -> tuple[Affine, np.ndarray, np.ndarray]:
    """Embed Linear -> ReLU -> Linear; returns the output expression and its interval bounds."""
    first, _, second = network
    weight = first.weight.detach().double().numpy()
    bias = first.bias.detach().double().numpy() if first.bias is not None else np.zeros(weight.shape[0])
    pre_low, pre_high = interval(weight, bias, low, high)
    hidden = relu(model, linear(expression, first, model.width), pre_low, pre_high)
    weight2 = second.weight.detach().double().numpy()
    bias2 = second.bias.detach().double().numpy() if second.bias is not None else np.zeros(weight2.shape[0])
    out_low, out_high = interval(weight2, bias2, np.maximum(pre_low, 0), np.maximum(pre_high, 0))
    return linear(hidden, second, model.width), out_low, out_high
