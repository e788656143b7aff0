"""The optimal-transport entry point: build the problem, solve it, measure the plan honestly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from nmkit.core import memory
from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError
from nmkit.core.ot import semidual_cpu, solve
from nmkit.core.ot.config import OTConfig
from nmkit.core.ot.problems import Problem, build_problem, routing_report

DEFAULT_ITERATIONS = 1000
"""The iteration cap at n <= 1,000 when ``max_iter`` is not set."""
MAX_PAIRS = 10**12
"""Source-target pairs per iteration beyond which a matrix-free solve is refused (~15 min an iteration here)."""


@dataclass
class TransportResult:
    reg: str
    formulation: str | None
    k: int | None
    batch: int
    m: int
    n: int
    cost: list[float]  # <T, C> per problem, in the units of the given cost
    objective: list[float] | None  # regularised dual objective per problem (cost scaled to max 1)
    nnz: int
    max_nnz_per_column: int
    row_marginal_error: float  # max over problems of ||T 1 - a||_1
    column_marginal_error: float  # max over problems of ||T^T 1 - b||_1
    iterations: int
    converged: bool
    message: str
    seconds: float
    routing: dict | None  # moe-routing: expert load vs greedy top-1 routing
    plans: solve.Plans = field(repr=False)
    problem: Problem = field(repr=False)

    def summary(self) -> dict:
        hidden = {"plans", "problem"}
        return {k: v for k, v in self.__dict__.items() if k not in hidden}


def transport(config: OTConfig, problem: Problem | None = None,
              advance: Callable[[int], None] | None = None) -> TransportResult:
    """Solve ``config`` (or the given ``problem``); ``advance`` is called once per L-BFGS iteration."""
    problem = problem or build_problem(config)
    batch, m, n = problem.shape
    if config.reg == "sparsity" and config.k > m:
        raise InputError(f"k = {config.k} exceeds the number of sources m = {m}")
    device = resolve_device(config.device)
    start = time.perf_counter()
    solution = _solve(config, problem, device, advance)
    seconds = time.perf_counter() - start
    plans = solution.plans
    dense_like = _marginals(plans, batch, m, n)
    columns = np.bincount(plans.batch * n + plans.cols, minlength=batch * n)
    cost = np.bincount(plans.batch, weights=plans.values * problem.cost_at(plans.batch, plans.rows, plans.cols),
                       minlength=batch)
    return TransportResult(
        reg=config.reg, formulation=config.formulation if config.reg in ("sparsity", "quadratic") else None,
        k=config.k if config.reg == "sparsity" else None, batch=batch, m=m, n=n, cost=cost.tolist(),
        objective=None if solution.objective is None else solution.objective.tolist(),
        nnz=len(plans.values), max_nnz_per_column=int(columns.max(initial=0)),
        row_marginal_error=float(np.abs(dense_like[0] - problem.a).sum(-1).max()),
        column_marginal_error=float(np.abs(dense_like[1] - problem.b).sum(-1).max()),
        iterations=solution.iterations, converged=solution.converged, message=solution.message,
        seconds=seconds, plans=plans, problem=problem,
        routing=routing_report(problem, plans.batch, plans.rows, plans.cols, plans.values)
        if problem.extras.get("routing") else None,
    )


def matrix_free(config: OTConfig, problem: Problem, device: str) -> bool:
    """Whether the solve runs on point clouds without forming the cost matrix: the default semi-dual with
    k <= 16 on CPU (the fused loop computes each cost where it is used)."""
    return (problem.points is not None and device == "cpu" and config.reg == "sparsity"
            and config.formulation == "semi-dual" and config.k <= semidual_cpu.MAX_K)


def dense_copies(config: OTConfig, problem: Problem, device: str) -> int:
    """m x n float64 arrays a dense solve holds at once, from measured peaks at n = 3,000 (increment over the
    imports, within 1.2x): the cost and its scaled transpose (2: the fused semi-dual, +140 MB for a 72 MB
    matrix), the dual's scores (3: +243 MB), the tensor semi-dual's sort (8: +611 MB), Sinkhorn's log-sum-exp
    (6: +449 MB); the linear program's 6 is not measured."""
    if config.reg in ("exact", "entropic"):
        return 6
    k = problem.shape[1] if config.reg == "quadratic" else config.k
    if config.formulation == "dual":
        return 3
    return 2 if device == "cpu" and k <= semidual_cpu.MAX_K else 8


def matrix_free_bytes(config: OTConfig, problem: Problem) -> int:
    """Peak memory of a matrix-free solve: per source its coordinates, potential, gradient and L-BFGS's
    2 x ``memory`` correction vectors; per target its coordinates and k plan entries (value, index)."""
    _, m, n = problem.shape
    d = problem.points.source.shape[1]
    return 8 * (m * (d + 6 + 2 * config.memory) + n * (d + 4 + 2 * config.k))


def _solve(config: OTConfig, problem: Problem, device: str, advance) -> solve.Solution:
    budget = iteration_budget(config, problem)
    if matrix_free(config, problem, device):
        _, m, n = problem.shape
        if m * n > MAX_PAIRS:
            raise InputError(f"{problem.name}: needs about {m * n:.1e} cost evaluations per iteration, more than the "
                             f"{MAX_PAIRS:.0e} one machine is given (hours per iteration); subsample the clouds")
        memory.require(matrix_free_bytes(config, problem), f"{problem.name} ({m} x {n} points)")
        points = problem.points
        scale = float(semidual_cpu.max_pair_cost(points.source, points.target, semidual_cpu.METRICS[points.metric]))
        return solve.solve_points(points, problem.a, problem.b, scale=scale or 1.0, gamma=config.gamma, k=config.k,
                                  tol=config.tol, stall_tol=config.stall_tol, max_iter=budget, memory=config.memory,
                                  advance=advance)
    full = problem.dense_cost(dense_copies(config, problem, device))
    if config.reg == "exact":
        return solve.exact(full, problem.a, problem.b)
    scale = float(np.abs(full).max()) or 1.0
    as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device)  # noqa: E731
    a, b = as_tensor(problem.a), as_tensor(problem.b)
    if config.reg == "entropic":
        cost = as_tensor(full / scale)
        return solve.sinkhorn(cost, a, b, epsilon=config.gamma, tol=max(config.tol, 1e-12), max_iter=budget)
    cost_t = torch.empty(full.shape[0], full.shape[2], full.shape[1], dtype=torch.float64)
    np.divide(full.transpose(0, 2, 1), scale, out=cost_t.numpy())  # a read-only memory map is fine here
    k = full.shape[1] if config.reg == "quadratic" else config.k
    return solve.solve_smooth(cost_t.to(device), a, b, gamma=config.gamma, k=k, formulation=config.formulation,
                              tol=config.tol, stall_tol=config.stall_tol, max_iter=budget, memory=config.memory,
                              advance=advance)


def iteration_budget(config: OTConfig, problem: Problem) -> int:
    """The iteration cap: ``max_iter`` when set, else one that grows with the problem (measured on Gaussian
    clouds, the stall test fires after ~1,500 iterations at n = 2,000 and ~3,200 at n = 5,000)."""
    if config.max_iter is not None:
        return config.max_iter
    return max(DEFAULT_ITERATIONS, round(DEFAULT_ITERATIONS * max(problem.shape[1:]) / 1000))


def _marginals(plans: solve.Plans, batch: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.bincount(plans.batch * m + plans.rows, weights=plans.values, minlength=batch * m).reshape(batch, m)
    cols = np.bincount(plans.batch * n + plans.cols, weights=plans.values, minlength=batch * n).reshape(batch, n)
    return rows, cols
