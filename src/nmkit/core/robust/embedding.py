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

from nmkit.core.errors import RunError
from nmkit.core.robust.solvers import solve_milp


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
        return Affine(_selection(indices, self.width), np.zeros(len(indices)))

    def constrain(self, matrix: sp.spmatrix, low, high) -> None:
        matrix = sp.csr_matrix(matrix)
        matrix.resize((matrix.shape[0], self.width))
        self.rows.append(matrix)
        self.row_low.append(np.broadcast_to(low, matrix.shape[0]).astype(float))
        self.row_high.append(np.broadcast_to(high, matrix.shape[0]).astype(float))

    def minimise(self, objective: np.ndarray, *, gap: float, time_limit: float | None = None, what: str):
        """Solve with HiGHS; the scipy result (x, fun, mip_dual_bound), or RunError naming ``what``."""
        options = {"mip_rel_gap": gap, **({} if time_limit is None else {"time_limit": max(time_limit, 1.0)})}
        result = solve_milp(objective, **self.scipy_form(), options=options)
        if result.x is None:
            raise RunError(f"{what} failed: {result.message}")
        return result

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
    unstable = np.flatnonzero((low < 0) & (high > 0))
    k = len(unstable)
    h = model.variables(k, 0.0, high[unstable])
    z = model.variables(k, 0.0, 1.0, integer=True)
    width = model.width
    matrix = pre.widened(width)
    hidden, gate = _selection(h, width), _selection(z, width)
    chosen, constant = matrix[unstable], pre.constant[unstable]
    model.constrain(hidden - chosen, constant, np.inf)  # h >= pre
    model.constrain(hidden - chosen - sp.diags(low[unstable]) @ gate, -np.inf, constant - low[unstable])
    model.constrain(hidden - sp.diags(high[unstable]) @ gate, -np.inf, 0.0)  # h <= u z
    passing = low >= 0
    placed = sp.csr_matrix((np.ones(k), (unstable, np.arange(k))), shape=(len(low), k))
    # stable-active rows pass through, stable-inactive rows are 0, the others are their h
    out = sp.diags(passing.astype(float)) @ matrix + placed @ hidden
    return Affine(sp.csr_matrix(out), np.where(passing, pre.constant, 0.0))


def _selection(indices: np.ndarray, width: int) -> sp.csr_matrix:
    k = len(indices)
    return sp.csr_matrix((np.ones(k), (np.arange(k), indices)), shape=(k, width))


def row(width: int, indices, values=None) -> sp.csr_matrix:
    """One constraint row with ``values`` (default 1) at ``indices``."""
    indices = np.atleast_1d(np.asarray(indices))
    values = np.ones(len(indices)) if values is None else np.atleast_1d(np.asarray(values, dtype=float))
    return sp.csr_matrix((values, (np.zeros(len(indices), int), indices)), shape=(1, width))


def pairs(width: int, left: np.ndarray, right: np.ndarray, weight: float = -1.0) -> sp.csr_matrix:
    """Rows v[left_i] + weight * v[right_i]."""
    k = len(left)
    return sp.csr_matrix((np.concatenate([np.ones(k), np.full(k, weight)]),
                          (np.tile(np.arange(k), 2), np.concatenate([left, right]))), shape=(k, width))


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


def scalar_mlp(model: MILP, t: int, low: float, high: float, base: np.ndarray, step: np.ndarray,
               network: nn.Sequential) -> tuple[Affine, np.ndarray, np.ndarray]:
    """Embed Linear -> ReLU -> Linear applied to base + t * step for one scalar variable t in [low, high].

    The output is piecewise linear in t with a breakpoint where a hidden unit changes sign, so it is modelled
    exactly by the incremental formulation: t = low + sum_k d_k, 0 <= d_k <= L_k, binaries z_k with
    d_k >= L_k z_k and d_(k+1) <= L_(k+1) z_k (segment k+1 opens only once segment k is full). Its LP relaxation
    is much tighter than one big-M ReLU per hidden unit, with no more binaries."""
    first, _, second = network
    w1, w2 = first.weight.detach().double().numpy(), second.weight.detach().double().numpy()
    b1 = first.bias.detach().double().numpy() if first.bias is not None else np.zeros(w1.shape[0])
    b2 = second.bias.detach().double().numpy() if second.bias is not None else np.zeros(w2.shape[0])
    offset, slope = w1 @ base + b1, w1 @ step
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = -offset / slope
    kinks = np.unique(kinks[np.isfinite(kinks) & (kinks > low + 1e-9) & (kinks < high - 1e-9)])
    points = np.concatenate([[low], kinks, [high]])
    values = np.maximum(offset[None, :] + points[:, None] * slope[None, :], 0) @ w2.T + b2  # [points, outputs]
    lengths = np.diff(points)
    slopes = np.diff(values, axis=0) / lengths[:, None]  # [segments, outputs]
    pieces = model.variables(len(lengths), 0.0, lengths)
    gates = model.variables(len(lengths) - 1, 0, 1, integer=True)
    width = model.width
    model.constrain(row(width, [t, *pieces], [1.0, *-np.ones(len(pieces))]), low, low)
    for k, gate in enumerate(gates):
        model.constrain(row(width, [pieces[k], gate], [1.0, -lengths[k]]), 0.0, np.inf)  # d_k >= L_k z_k
        model.constrain(row(width, [pieces[k + 1], gate], [1.0, -lengths[k + 1]]), -np.inf, 0.0)
    matrix = sp.csr_matrix((slopes.T.ravel(), (np.repeat(np.arange(values.shape[1]), len(pieces)),
                                               np.tile(pieces, values.shape[1]))), shape=(values.shape[1], width))
    return Affine(matrix, values[0]), values.min(0), values.max(0)
