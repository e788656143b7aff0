"""The optimal-transport entry point: build the problem, solve it, measure the plan honestly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError
from nmkit.core.ot import solve
from nmkit.core.ot.config import OTConfig
from nmkit.core.ot.problems import Problem, build_problem, routing_report


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
    batch, m, n = problem.cost.shape
    if config.reg == "sparsity" and config.k > m:
        raise InputError(f"k = {config.k} exceeds the number of sources m = {m}")
    device = resolve_device(config.device)
    scale = float(np.abs(problem.cost).max()) or 1.0
    start = time.perf_counter()
    solution = _solve(config, problem, scale, device, advance)
    seconds = time.perf_counter() - start
    plans = solution.plans
    dense_like = _marginals(plans, batch, m, n)
    columns = np.bincount(plans.batch * n + plans.cols, minlength=batch * n)
    cost = np.bincount(plans.batch, weights=plans.values * problem.cost[plans.batch, plans.rows, plans.cols],
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


def _solve(config: OTConfig, problem: Problem, scale: float, device: str, advance) -> solve.Solution:
    if config.reg == "exact":
        return solve.exact(problem.cost, problem.a, problem.b)
    as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device)  # noqa: E731
    cost, a, b = as_tensor(problem.cost / scale), as_tensor(problem.a), as_tensor(problem.b)
    if config.reg == "entropic":
        return solve.sinkhorn(cost, a, b, epsilon=config.gamma, tol=max(config.tol, 1e-12), max_iter=config.max_iter)
    k = problem.cost.shape[1] if config.reg == "quadratic" else config.k
    return solve.solve_smooth(cost, a, b, gamma=config.gamma, k=k, formulation=config.formulation, tol=config.tol,
                              max_iter=config.max_iter, memory=config.memory, advance=advance)


def _marginals(plans: solve.Plans, batch: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.bincount(plans.batch * m + plans.rows, weights=plans.values, minlength=batch * m).reshape(batch, m)
    cols = np.bincount(plans.batch * n + plans.cols, weights=plans.values, minlength=batch * n).reshape(batch, n)
    return rows, cols
