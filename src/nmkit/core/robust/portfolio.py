"""``robust-opt solve``: a portfolio of candidate decisions within one time limit, each scored by its exact worst
case, the best kept. Every reported profit is therefore true, never predicted.

Candidates, cheapest first:
1. nominal: the main problem with xi = 0 only (the uncertainty ignored), always scored and reported beside;
2. the problem's committed plans (knapsack: the static decision, a recourse fixed before xi, dualised);
3. ML-CCG (Neur2RO) with a value network, within ``ml_share`` of the time;
4. exact CCG warm-started with the worst cases found so far and the best candidate as incumbent, its main
   problem solved to a relative gap (tightened when an x repeats) for the rest of the time: every x it proposes
   is a candidate, and its main problem's bound bounds the optimum (status "optimal" when the gap closes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmkit.core.errors import RunError
from nmkit.core.robust.ccg import exact_ccg
from nmkit.core.robust.mlccg import ml_ccg
from nmkit.core.robust.network import ValueModel
from nmkit.core.robust.problem import RobustProblem


@dataclass
class PortfolioResult:
    x: np.ndarray
    profit: float  # exact robust profit of x
    source: str  # which candidate x came from
    bound: float  # an upper bound on the robust profit (CCG's main problem)
    status: str  # "optimal" (bound met within tol) or "time limit"
    seconds: float
    nominal_profit: float
    scoring_seconds: float  # one exact worst-case evaluation (the nominal decision's)
    candidates: dict[str, float] = field(default_factory=dict)  # source -> exact profit (ccg: only if it won)

    @property
    def gap(self) -> float:
        return (self.bound - self.profit) / max(abs(self.profit), 1e-9)


def solve(problem: RobustProblem, instance: Any, *, model: ValueModel | None = None, time_limit: float = 15.0,
          main_gap: float = 1e-3, ml_share: float = 0.25, adversary: str = "pga", tol: float = 1e-4,
          seed: int = 0) -> PortfolioResult:
    start = time.perf_counter()
    remaining = lambda: max(time_limit - (time.perf_counter() - start), 0.1)  # noqa: E731
    dim = problem.uncertainty(instance).dim
    candidates, scenarios, best = {}, [], (np.inf, None, "")

    def consider(name: str, x: np.ndarray) -> None:
        nonlocal best
        worst = problem.worst_case(instance, x)
        cost = problem.first_stage_cost(instance, x) + worst.value
        candidates[name] = -cost
        scenarios.append(worst.xi)
        if cost < best[0]:
            best = (cost, x, name)

    nominal, _ = problem.main_problem(instance, [np.zeros(dim)], remaining(), 1e-9)
    scoring = time.perf_counter()
    consider("nominal", nominal)
    scoring = time.perf_counter() - scoring
    try:
        for name, x in problem.committed_plans(instance, remaining() / 3):
            consider(name, x)
    except RunError:  # no incumbent within its share of the time: the other candidates remain
        pass
    if model is not None and remaining() > 1.0:
        ml = ml_ccg(model, instance, adversary=adversary, time_limit=ml_share * time_limit, seed=seed)
        candidates["ml-ccg"] = ml.objective
        if -ml.objective < best[0]:
            best = (-ml.objective, ml.x, "ml-ccg")
    ccg = exact_ccg(problem, instance, tol=tol, time_limit=remaining(), main_gap=main_gap, scenarios=scenarios,
                    incumbent=best[:2])
    if -ccg.objective < best[0] - 1e-9 * max(1.0, abs(best[0])):  # CCG found a better x than its incumbent
        best = (-ccg.objective, ccg.x, "ccg")
        candidates["ccg"] = ccg.objective
    return PortfolioResult(best[1], -best[0], best[2], max(ccg.bound, -best[0]),
                           "time limit" if ccg.timed_out else "optimal", time.perf_counter() - start,
                           candidates["nominal"], scoring, candidates)
