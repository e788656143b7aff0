"""Exact column-and-constraint generation (Zeng and Zhao 2013) for any ``RobustProblem``.

The main problem over the scenarios found so far gives a lower bound; the exact worst case of its x gives an
upper bound and the next scenario. X is finite and a repeated x closes the gap, so the loop ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmkit.core.robust.problem import RobustProblem, ScoringTimeout


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


def exact_ccg(problem: RobustProblem, instance: Any, *, tol: float = 1e-4, time_limit: float = 600.0,
              main_gap: float = 1e-9, scenarios: list[np.ndarray] | None = None,
              incumbent: tuple[float, np.ndarray] | None = None) -> CCGResult:
    """CCG to a relative gap ``tol`` or the time limit (reported as such, with the best bound and the best x found:
    every candidate is scored by its exact worst case, so the answer is the best robust decision seen).

    ``main_gap``: the main problem's relative MIP gap. Above 0 each main solve stops early with a good incumbent
    (its dual bound still bounds the optimum); when an x repeats, the gap is tightened tenfold, down to 1e-9,
    so the loop still ends exact. ``scenarios``: a warm start (e.g. other candidates' worst cases), used from the
    first main solve; ``incumbent``: (robust cost, x) of a decision already scored, the answer unless beaten."""
    start = time.perf_counter()
    scenarios = [np.zeros(problem.uncertainty(instance).dim)] + list(scenarios or [])
    lower, (upper, best) = -np.inf, incumbent if incumbent is not None else (np.inf, None)
    iterations, timed_out, seen = 0, False, set()
    while True:
        iterations += 1
        began = time.perf_counter()
        x, bound = problem.main_problem(instance, scenarios, max(time_limit - (time.perf_counter() - start), 0.1),
                                        main_gap)
        lower = max(lower, bound)
        key = x.astype(np.int8).tobytes()
        repeated = key in seen
        if repeated:  # its worst case is already a scenario: only a tighter main problem can move on
            main_gap = main_gap / 10 if main_gap > 1e-9 else 0.0
        else:
            seen.add(key)
            try:
                worst = problem.worst_case(instance, x, deadline=None if best is None else start + time_limit)
            except ScoringTimeout:  # this x cannot be scored in time: stop with the best one scored (the first x
                # is always scored, so there is one)
                timed_out = True
                break
            cost = problem.first_stage_cost(instance, x) + worst.value
            if cost < upper:
                upper, best = cost, x
            scenarios.append(worst.xi)
        if upper - lower <= tol * max(1.0, abs(upper)) or (repeated and main_gap == 0.0):
            break
        now = time.perf_counter()
        if now - start + (now - began) > time_limit:  # another iteration like this one would overrun the limit
            timed_out = True
            break
    return CCGResult(best, -upper, -lower, iterations, time.perf_counter() - start, timed_out, scenarios)
