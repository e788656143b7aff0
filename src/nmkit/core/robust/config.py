"""Schema of ``nmkit robust-opt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import CommonConfig, option

ACTION_HELP = {
    "generate": "write knapsack instances (Arslan and Detienne's generator and text format)",
    "exact": "solve an instance exactly by column-and-constraint generation (HiGHS)",
}


@dataclass(frozen=True)
class RobustConfig(CommonConfig):
    """Two-stage robust optimisation: instances and the exact CCG baseline (Neur2RO's learned solver: to come)."""

    action: Literal["generate", "exact"] = option("exact", "; ".join(f"{k}: {v}" for k, v in ACTION_HELP.items()))
    problem: Literal["knapsack"] = option("knapsack", "two-stage robust knapsack with repair")
    instance: Path | None = option(None, "exact: the instance file")
    output: Path | None = option(None, "generate: the file to write (a folder with count > 1)")
    n: int = option(20, "generate: items", ge=1)
    correlation: Literal["UN", "WC", "ASC", "SC"] = option("UN", "generate: profit-weight correlation")
    h: float = option(40.0, "generate: capacity = h / (H + 1) * sum of weights, H = 100", gt=0)
    delta: float = option(0.5, "generate: degradation spread, phat / pbar in [(1 - delta)/2, (1 + delta)/2]",
                          ge=0, le=1)
    budget_factor: float = option(0.1, "generate: Gamma = budget_factor * n", gt=0, le=1)
    count: int = option(1, "generate: how many instances (seeds seed, seed + 1, ...)", ge=1)
    tol: float = option(1e-4, "exact: stop at this relative gap", gt=0)
    time_limit: float = option(600.0, "exact: seconds before stopping with the best bound", gt=0)

    def __post_init__(self) -> None:
        if self.action == "generate" and self.output is None:
            raise ConfigError("action generate needs output (-o FILE, or a folder with --count)")
        if self.action == "exact" and self.instance is None:
            raise ConfigError("action exact needs an instance file")
