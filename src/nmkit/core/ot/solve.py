"""Solvers: L-BFGS on the smoothed (semi-)dual, log-domain Sinkhorn, and exact OT by LP.

L-BFGS is scipy's L-BFGS-B driving torch objectives: only the potentials (length m + n per problem)
cross between scipy and the device; the m x n work (top-k projection, gathers, scatter-adds) stays in
torch, on CPU threads or CUDA. Using the same driver and ``tol`` as POT's ``ot.smooth`` makes
tolerances comparable. A batch of problems is one separable objective (the sum), solved at once.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import scipy.optimize
import scipy.sparse
import torch

from nmkit.core.errors import RunError
from nmkit.core.ot import multiscale, semidual_cpu, smooth


@dataclass
class Plans:
    """A batch of plans as COO triplets plus the shape of one plan."""

    batch: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int, int]  # (batch, m, n)

    def matrix(self, index: int = 0) -> scipy.sparse.csr_array:
        keep = self.batch == index
        return scipy.sparse.coo_array((self.values[keep], (self.rows[keep], self.cols[keep])),
                                      shape=self.shape[1:]).tocsr()

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape)
        np.add.at(out, (self.batch, self.rows, self.cols), self.values)
        return out


@dataclass
class Solution:
    plans: Plans
    objective: np.ndarray | None  # dual objective per problem (regularised solvers)
    iterations: int
    converged: bool
    message: str
    potential: np.ndarray | None = None  # the maximising dual variables (L-BFGS solvers)


def solve_smooth(cost_t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, gamma: float, k: int,
                 formulation: str, tol: float, max_iter: int, memory: int = 30, stall_tol: float = 1e-6,
                 advance: Callable[[int], None] | None = None) -> Solution:
    """Sparsity-constrained (k < m) or quadratic (k = m) OT. ``cost_t`` is the cost transposed, [batch, n, m],
    float64 (a plan column is a contiguous row).

    ``memory`` is L-BFGS's number of stored corrections (scipy's ``maxcor``; POT keeps scipy's 10);
    ``advance(1)`` is called after every iteration (progress bars).
    """
    batch, n, m = cost_t.shape
    if formulation == "semi-dual":
        def evaluate(x):
            objective, grad, plan = smooth.semi_dual(x.view(batch, m), a, b, cost_t, gamma, k)
            return objective, grad.reshape(-1), plan
        size = batch * m
    else:
        def evaluate(x):
            x = x.view(batch, m + n)
            objective, grad_alpha, grad_beta, plan = smooth.dual(x[:, :m], x[:, m:], a, b, cost_t, gamma, k)
            return objective, torch.cat([grad_alpha, grad_beta], dim=-1).reshape(-1), plan
        size = batch * (m + n)
    with _cpu_threads(1 if cost_t.device.type == "cpu" else None):
        return _maximise(evaluate, size, m, cost_t.device, tol=tol, stall_tol=stall_tol, max_iter=max_iter,
                         memory=memory, advance=advance)


def solve_points(points, a: np.ndarray, b: np.ndarray, *, scale: float, gamma: float, k: int, tol: float,
                 max_iter: int, memory: int = 30, stall_tol: float = 1e-6, coarse: bool = True,
                 advance: Callable[[int], None] | None = None) -> Solution:
    """The sparsity-constrained semi-dual between point clouds (``problems.Points``), costs divided by ``scale``
    and computed where they are used: memory O((m + n)(d + k)), never m x n. Both cores work on the columns
    (each evaluation is m n cost computations, long enough to repay waking the second thread). Large clouds
    start from a subsample's solution (``coarse``, :mod:`nmkit.core.ot.multiscale`)."""
    source, target = (np.ascontiguousarray(p, dtype=np.float64) for p in (points.source, points.target))
    m = len(source)

    def evaluate(x):
        objective, grad, values, indices = semidual_cpu.semi_dual_points(
            x.numpy().reshape(1, m), a, b, source, target, points.metric, scale, gamma, k)
        as_t = torch.from_numpy
        return as_t(objective), as_t(grad).reshape(-1), smooth.SparsePlan(as_t(values), as_t(indices))

    def solve_coarse(sub_points, sub_a, sub_b) -> np.ndarray:
        return solve_points(sub_points, sub_a, sub_b, scale=scale, gamma=gamma, k=k, tol=tol, max_iter=max_iter,
                            memory=memory, stall_tol=stall_tol).potential

    start = multiscale.warm_start(points, a, b, solve_coarse) if coarse else None
    return _maximise(evaluate, m, m, torch.device("cpu"), tol=tol, stall_tol=stall_tol, max_iter=max_iter,
                     memory=memory, advance=advance, start=start)


def _maximise(evaluate, size: int, m: int, device: torch.device, *, tol: float, stall_tol: float, max_iter: int,
              memory: int, advance: Callable[[int], None] | None, start: np.ndarray | None = None) -> Solution:
    """Restarted L-BFGS on a concave objective: ``evaluate(x)`` gives (objective [batch], gradient, plan)."""
    def negated(x_np: np.ndarray) -> tuple[float, np.ndarray]:
        objective, grad, _ = evaluate(torch.from_numpy(x_np).to(device))
        return -float(objective.sum()), -grad.cpu().numpy()

    with torch.no_grad():
        x, iterations, converged, message = _lbfgs_with_restarts(
            negated, np.zeros(size) if start is None else start, tol=tol, stall_tol=stall_tol, max_iter=max_iter,
            memory=memory, advance=advance)
        objective, _, plan = evaluate(torch.from_numpy(x).to(device))
    return Solution(_from_sparse(plan, m), objective.cpu().numpy(), iterations, converged, message, x)


STALL_WINDOW = 50
"""Iterations over which the dual objective's progress is judged by the stall test."""


def _lbfgs_with_restarts(negated, x0: np.ndarray, *, tol: float, stall_tol: float, max_iter: int, memory: int,
                         advance: Callable[[int], None] | None = None) -> tuple[np.ndarray, int, bool, str]:
    """L-BFGS-B, restarted from where it stopped while a restart still improves the objective; returns
    (x, iterations, converged, message).

    The sparsity-constrained (semi-)dual is concave but not smooth where a column's top-k set changes, so its
    gradient (the row-marginal error a - T 1) need not vanish at the optimum and is no stopping test. Two tests
    are: L-BFGS-B's relative reduction of one step (``tol``, as POT), which can fire far from the optimum
    (measured: 0.4% below it after 35 iterations on a 15 x 12 problem; a restart with a fresh curvature memory
    moves on), and the stall test: the objective gained less than ``stall_tol`` (relative) over the last
    STALL_WINDOW iterations. Large problems end by the stall test (n = 2,000: within 5e-6 of the best
    objective 4,000 iterations reach, at 1,500 iterations).
    """
    x, value, iterations = x0, negated(x0)[0], 0
    history = [value]

    def each_iteration(intermediate_result) -> None:
        history.append(float(intermediate_result.fun))
        if advance is not None:
            advance(1)
        if _gain(history) <= stall_tol:
            raise StopIteration

    while True:
        result = scipy.optimize.minimize(negated, x, jac=True, method="L-BFGS-B", tol=tol,
                                         options={"maxiter": max_iter - iterations, "maxcor": memory},
                                         callback=each_iteration)
        iterations += int(result.nit)
        improvement = value - result.fun
        x, value = result.x, result.fun
        if _gain(history) <= stall_tol:
            return x, iterations, True, (f"converged: the objective gained {_gain(history):.1e} (relative) over "
                                         f"the last {STALL_WINDOW} iterations")
        if result.nit == 0 or improvement <= tol * max(1.0, abs(value)):
            return x, iterations, True, f"converged: {result.message}"
        if iterations >= max_iter:
            return x, iterations, False, (f"not converged after {iterations} iterations: the objective still gained "
                                          f"{_gain(history):.1e} (relative) over the last {STALL_WINDOW} iterations "
                                          f"(stall_tol {stall_tol:g}); raise max_iter")


def _gain(history: list[float]) -> float:
    """Relative decrease of the (negated) objective over the last STALL_WINDOW iterations (inf before then)."""
    if len(history) <= STALL_WINDOW:
        return math.inf
    return (history[-STALL_WINDOW - 1] - history[-1]) / max(abs(history[-1]), 1e-300)


@contextlib.contextmanager
def _cpu_threads(count: int | None):
    """Run torch and numba on ``count`` threads. Between L-BFGS-B's Fortran steps idle OpenMP workers
    spin or sleep, and waking them costs more than they save: on 2 cores one thread was 3-12x faster
    than two for n = 500-2000 (measured with both torch and the fused numba loop)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(count)
    numba.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def sinkhorn(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, epsilon: float, tol: float,
             max_iter: int) -> Solution:
    """Entropic OT by log-domain Sinkhorn; stops when the row-marginal L1 error is below ``tol``."""
    log_a, log_b = torch.log(a), torch.log(b)
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    error = math.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported
        f = epsilon * (log_a - torch.logsumexp((g.unsqueeze(-2) - cost) / epsilon, dim=-1))
        g = epsilon * (log_b - torch.logsumexp((f.unsqueeze(-1) - cost) / epsilon, dim=-2))
        if iterations % 10 == 0 or iterations == max_iter:
            plan = torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / epsilon)
            error = float((plan.sum(-1) - a).abs().sum(-1).max())
            if error < tol:
                break
    plan = torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / epsilon)
    objective = ((f * a).sum(-1) + (g * b).sum(-1)).cpu().numpy()
    converged = error < tol
    return Solution(_from_dense(plan), objective, iterations, converged,
                    "converged" if converged else f"row-marginal error {error:.3g} after {iterations} iterations")


def exact(cost: np.ndarray, a: np.ndarray, b: np.ndarray) -> Solution:
    """Unregularised OT: an assignment for uniform square problems, HiGHS linear programming otherwise."""
    batch, m, n = cost.shape
    parts = []
    for index in range(batch):
        if m == n and _uniform(a[index]) and _uniform(b[index]):
            rows, cols = scipy.optimize.linear_sum_assignment(cost[index])
            values = np.full(m, 1 / m)
        else:
            rows, cols, values = _transport_lp(cost[index], a[index], b[index])
        parts.append((np.full(len(rows), index), rows, cols, values))
    batch_ids, rows, cols, values = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Solution(Plans(batch_ids, rows, cols, values, (batch, m, n)), None, 0, True, "optimal")


def _uniform(weights: np.ndarray) -> bool:
    return bool(np.all(np.abs(weights * len(weights) - 1) < 1e-9))


def _transport_lp(cost: np.ndarray, a: np.ndarray, b: np.ndarray):
    m, n = cost.shape
    eye_m, eye_n = scipy.sparse.identity(m, format="csr"), scipy.sparse.identity(n, format="csr")
    constraints = scipy.sparse.vstack([scipy.sparse.kron(eye_m, np.ones((1, n))),
                                       scipy.sparse.kron(np.ones((1, m)), eye_n)]).tocsr()
    result = scipy.optimize.linprog(cost.ravel(), A_eq=constraints, b_eq=np.concatenate([a, b]), bounds=(0, None),
                                    method="highs")
    if not result.success:
        raise RunError(f"exact OT: the linear program failed ({result.message})")
    flat = np.flatnonzero(result.x > 0)
    return flat // n, flat % n, result.x[flat]


def _from_sparse(plan: smooth.SparsePlan, m: int) -> Plans:
    values = plan.values.cpu().numpy()
    batch, n, k = values.shape
    batch_ids, cols, _ = np.indices((batch, n, k))
    keep = values > 0
    return Plans(batch_ids[keep], plan.indices.cpu().numpy()[keep], cols[keep], values[keep], (batch, m, n))


def _from_dense(plan: torch.Tensor) -> Plans:
    dense = plan.cpu().numpy()
    batch_ids, rows, cols = np.nonzero(dense)
    return Plans(batch_ids, rows, cols, dense[batch_ids, rows, cols], dense.shape)
