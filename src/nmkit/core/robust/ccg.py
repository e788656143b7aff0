"""Exact column-and-constraint generation (Zeng and Zhao 2013) for any ``RobustProblem``.

The main problem over the scenarios found so far gives a lower bound; the exact worst case of its x gives an
upper bound and the next scenario. X is finite and a repeated x closes the gap, so the loop ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmkit.core.robust.problem import RobustProblem


@dataclass
class CCGResult:
    x: np.ndarray
    objective: float  # robust objective of x as a profit (= -upper bound in minimisation form)
    bound: float  # best bound on the robust profit (= -lower bound)
    iterations: int
    seconds: float
    timed_out: bool
    scenarios: list[np.ndarray] = field(repr=False)

    @property
    def gap(self) -> float:
        return (self.bound - self.objective) / max(abs(self.objective), 1e-9)


def exact_ccg(problem: RobustProblem, instance: Any, *, tol: float = 1e-4, time_limit: float = 600.0) -> CCGResult:
    """CCG to a relative gap ``tol`` or the time limit (reported as such, with the best bound)."""
    start = time.perf_counter()
    scenarios = [np.zeros(problem.uncertainty(instance).dim)]
    lower, upper, best = -np.inf, np.inf, None
    iterations, timed_out = 0, False
    while True:
        iterations += 1
        x, lower = problem.main_problem(instance, scenarios, time_limit - (time.perf_counter() - start))
        worst = problem.worst_case(instance, x)
        cost = problem.first_stage_cost(instance, x) + worst.value
        if cost < upper:
            upper, best = cost, x
        if upper - lower <= tol * max(1.0, abs(upper)):
            break
        if time.perf_counter() - start > time_limit:
            timed_out = True
            break
        scenarios.append(worst.xi)
    return CCGResult(best, -upper, -lower, iterations, time.perf_counter() - start, timed_out, scenarios)
