"""Exact two-stage robust knapsack by column-and-constraint generation (Zeng and Zhao 2013), on HiGHS.

Minimisation form (Neur2RO's ``kp.py``): cost(x, xi, y, r) = (f - pbar) . x + sum_i (phat_i xi_i - f_i) y_i
- phat_i xi_i r_i, with y <= x, r <= y, c . y + t . r <= C, binary; xi in {[0,1]^n : sum xi <= Gamma}. The profit
is minus the cost.

* Second stage Q(x, xi): the inner MILP.
* Worst case for a fixed x (the exact evaluator): Q(x, .) is a minimum of functions linear in xi, one per
  recourse (y, r), so max_xi Q is an LP over (xi, z) with a cut z <= a_j . xi + b_j per recourse; row generation
  adds the oracle's recourse at the LP's xi until the oracle agrees with z.
* CCG: the main problem holds one recourse copy per scenario found so far and gives a lower bound; the exact
  evaluator's worst case for its x gives an upper bound and the next scenario.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from nmkit.core.errors import RunError
from nmkit.core.robust.instances import Knapsack

MIP_GAP = 1e-9


@contextlib.contextmanager
def _highs_silenced():
    """HiGHS's MIP solver prints stray debug lines straight to file descriptor 1, which would corrupt --json
    output; point fd 1 at /dev/null while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _milp(*args, **kwargs):
    """scipy.optimize.milp, silenced; HiGHS's presolve sometimes ends in "Solve error" (status 4) on the big-M
    models of ML-CCG, so such a solve is repeated once without presolve."""
    with _highs_silenced():
        result = milp(*args, **kwargs)
        if result.status == 4:
            result = milp(*args, **{**kwargs, "options": {**kwargs.get("options", {}), "presolve": False}})
    return result


def first_stage_cost(instance: Knapsack, x: np.ndarray) -> float:
    return float((instance.f - instance.pbar) @ x)


def second_stage(instance: Knapsack, x: np.ndarray, xi: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Q(x, xi) and the optimal recourse (y, r)."""
    n, degradation = instance.n, instance.phat * xi
    objective = np.concatenate([degradation - instance.f, -degradation])
    rows = sp.vstack([sp.hstack([-sp.eye(n), sp.eye(n)]),  # r <= y
                      sp.csr_matrix(np.concatenate([instance.c, instance.t])[None, :])])
    upper = np.concatenate([np.zeros(n), [instance.capacity]])
    result = _milp(objective, integrality=np.ones(2 * n), bounds=Bounds(0, np.concatenate([x, np.ones(n)])),
                  constraints=LinearConstraint(rows, -np.inf, upper), options={"mip_rel_gap": MIP_GAP})
    if result.x is None:
        raise RunError(f"second-stage MILP failed: {result.message}")
    z = np.round(result.x)
    return float(objective @ z), z[:n], z[n:]


@dataclass
class WorstCase:
    value: float  # max over xi of Q(x, xi)
    xi: np.ndarray
    cuts: int


def worst_case(instance: Knapsack, x: np.ndarray, tol: float = 1e-6) -> WorstCase:
    """The exact adversary: max_xi Q(x, xi) by row generation over recourses (see the module docstring)."""
    n = instance.n
    _, y, r = second_stage(instance, x, np.zeros(n))
    slopes, offsets = [instance.phat * (y - r)], [-(instance.f @ y)]
    while True:
        # variables (xi, z): maximise z, z - a_j . xi <= b_j, sum xi <= Gamma, 0 <= xi <= 1
        rows = np.vstack([np.hstack([-np.array(slopes), np.ones((len(slopes), 1))]),
                          np.concatenate([np.ones(n), [0.0]])[None, :]])
        result = linprog(np.concatenate([np.zeros(n), [-1.0]]), A_ub=rows,
                         b_ub=np.concatenate([offsets, [instance.gamma]]),
                         bounds=[(0, 1)] * n + [(None, None)], method="highs")
        if result.x is None:
            raise RunError(f"adversarial LP failed: {result.message}")
        xi, bound = result.x[:n], -result.fun
        value, y, r = second_stage(instance, x, xi)
        if value >= bound - tol * max(1.0, abs(bound)):
            return WorstCase(value, xi, len(slopes))
        slopes.append(instance.phat * (y - r))
        offsets.append(-(instance.f @ y))


@dataclass
class CCGResult:
    x: np.ndarray
    objective: float  # robust profit of x (= -upper bound in minimisation form)
    bound: float  # best bound on the robust profit (= -lower bound)
    iterations: int
    seconds: float
    timed_out: bool
    scenarios: list[np.ndarray] = field(repr=False)

    @property
    def gap(self) -> float:
        return (self.bound - self.objective) / max(abs(self.objective), 1e-9)


def main_problem(instance: Knapsack, scenarios: list[np.ndarray], time_limit: float) -> tuple[np.ndarray, float]:
    """min_x, theta (f - pbar) . x + theta with theta >= Q-copy at every scenario; returns x and the bound."""
    n, k = instance.n, len(scenarios)
    width = n + 1 + 2 * n * k  # x, theta, then (y^k, r^k) per scenario
    blocks, lower, upper = [], [], []
    for j, xi in enumerate(scenarios):
        degradation = instance.phat * xi
        y0 = n + 1 + 2 * n * j
        row = sp.lil_matrix((2 * n + 2, width))
        row[0, n] = -1.0  # sum (phat xi - f) y - phat xi r - theta <= 0
        row[0, y0 : y0 + n] = degradation - instance.f
        row[0, y0 + n : y0 + 2 * n] = -degradation
        for i in range(n):
            row[1 + i, y0 + i], row[1 + i, i] = 1.0, -1.0  # y <= x
            row[1 + n + i, y0 + n + i], row[1 + n + i, y0 + i] = 1.0, -1.0  # r <= y
        row[2 * n + 1, y0 : y0 + n] = instance.c
        row[2 * n + 1, y0 + n : y0 + 2 * n] = instance.t
        blocks.append(row.tocsr())
        lower += [-np.inf] * (2 * n + 2)
        upper += [0.0] * (2 * n + 1) + [instance.capacity]
    objective = np.zeros(width)
    objective[:n], objective[n] = instance.f - instance.pbar, 1.0
    integrality = np.ones(width)
    integrality[n] = 0
    bounds = Bounds(np.where(np.arange(width) == n, -np.inf, 0), np.where(np.arange(width) == n, np.inf, 1))
    result = _milp(objective, integrality=integrality, bounds=bounds,
                  constraints=LinearConstraint(sp.vstack(blocks), lower, upper),
                  options={"mip_rel_gap": MIP_GAP, "time_limit": max(time_limit, 1.0)})
    if result.x is None:
        raise RunError(f"main problem failed: {result.message}")
    bound = getattr(result, "mip_dual_bound", None)
    return np.round(result.x[:n]), float(result.fun if bound is None or result.status == 0 else bound)


def exact_ccg(instance: Knapsack, *, tol: float = 1e-4, time_limit: float = 600.0) -> CCGResult:
    """Column-and-constraint generation to a relative gap ``tol`` or the time limit (reported as such)."""
    start = time.perf_counter()
    scenarios = [np.zeros(instance.n)]
    lower, upper, best = -np.inf, np.inf, np.zeros(instance.n)
    iterations, timed_out = 0, False
    while True:
        iterations += 1
        remaining = time_limit - (time.perf_counter() - start)
        x, lower = main_problem(instance, scenarios, remaining)
        worst = worst_case(instance, x)
        cost = first_stage_cost(instance, x) + worst.value
        if cost < upper:
            upper, best = cost, x
        if upper - lower <= tol * max(1.0, abs(upper)):
            break
        if time.perf_counter() - start > time_limit:
            timed_out = True
            break
        scenarios.append(worst.xi)
    return CCGResult(best, -upper, -lower, iterations, time.perf_counter() - start, timed_out, scenarios)
