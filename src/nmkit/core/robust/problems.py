"""The robust problems nmkit knows, by name."""

from __future__ import annotations

from nmkit.core.robust.capital_budgeting import CapitalBudgetingProblem
from nmkit.core.robust.knapsack import KnapsackProblem
from nmkit.core.robust.problem import RobustProblem

PROBLEMS: dict[str, RobustProblem] = {p.name: p for p in (KnapsackProblem(), CapitalBudgetingProblem())}
