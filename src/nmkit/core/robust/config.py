"""Schema of ``nmkit robust-opt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import BatchConfig, option

ACTION_HELP = {
    "generate": "write instances (knapsack: Arslan and Detienne's generator and format; capital budgeting: "
                "Subramanyam et al.'s generator)",
    "exact": "solve an instance exactly by column-and-constraint generation (HiGHS, or SCIP with solver scip)",
    "train": "collect second-stage solves on sampled instances, train the value network, check it on fresh ones",
    "solve": "solve an instance, or every instance of a folder (--reference adds the gap to known profits): the "
             "best exactly scored of the nominal decision, the static one, ML-CCG's (shipped value network, or "
             "--model) and time-limited CCG's",
}


@dataclass(frozen=True)
class RobustConfig(BatchConfig):
    """Two-stage robust optimisation: instances, the exact CCG baseline and Neur2RO's learned ML-CCG."""

    action: Literal["generate", "exact", "train", "solve"] = option(
        "exact", "; ".join(f"{k}: {v}" for k, v in ACTION_HELP.items()))
    problem: Literal["knapsack", "capital_budgeting"] = option(
        "knapsack", "knapsack: two-stage robust knapsack with repair; capital_budgeting: invest now or later under "
                    "cost and revenue uncertainty (constraint uncertainty)")
    solver: Literal["highs", "scip"] = option("highs", "MILP backend: highs (scipy.optimize.milp) or scip "
                                                       "(needs PySCIPOpt installed)")
    instance: Path | None = option(None, "exact, solve: the instance file (solve: or a folder of them)")
    model: Path | None = option(None, "solve: a model.pt from a train run, or its folder (default: the value "
                                      "network shipped with nmkit for the problem)")
    reference: Path | None = option(None, "solve: a CSV with an 'instance' column and known profits, for gaps")
    reference_column: str = option("best_known_profit", "solve: the reference file's profit column")
    main_gap: float = option(1e-3, "solve: relative MIP gap of CCG's main problem (tightened when an x repeats)",
                             gt=0, le=1)
    instances: Path | None = option(None, "train: a folder of instance files to learn from (default: sample)")
    sample: int = option(30, "train: instances to sample when no folder is given (n drawn from n_range)",
                         ge=1, le=100_000)
    n_range: list[int] = option([10, 20], "train: smallest and largest n of sampled instances")
    decisions: int = option(10, "train: first-stage decisions sampled per instance", ge=1, le=100_000)
    scenarios: int = option(20, "train: scenarios per decision (each one second-stage MILP)", ge=1, le=100_000)
    worst_cases: bool = option(False, "train: also learn from the scenarios each sampled decision's exact "
                                      "worst-case search visits (off: Neur2RO's sampling only)")
    workers: int | None = option(None, "local worker processes, short for executor local:N (train: second-stage "
                                       "data per instance; solve: instances)", ge=1, le=1024)
    resume: bool = option(False, "train, solve: keep the tasks a stopped run in --out finished (logged in its "
                                 "tasks.jsonl) and run only the rest")
    encoder: Literal["auto", "separate", "joint"] = option(
        "auto", "train: auto: separate for the knapsack, joint for capital budgeting (what measured best); "
                "separate: Neur2RO's two set encoders (x and xi summed apart); joint: one per-item encoder "
                    "over [x_i features, xi features] (for capital budgeting the MILP adversary then embeds a net "
                    "per project)")
    embed: list[int] = option([32, 16], "train: per-item network widths (hidden, output); the MILP adversary "
                                        "embeds items x hidden ReLUs")
    post: list[int] = option([64, 8], "train: widths after the sum over items (hidden, output; separate encoder "
                                      "only: the joint one goes straight to the value net)")
    value: int = option(8, "train: hidden width of the value network", ge=1, le=4096)
    epochs: int = option(100, "train: epochs (the best validation MAE is kept)", ge=1, le=100_000)
    lr: float = option(1e-3, "train: Adam learning rate", gt=0)
    batch_size: int = option(256, "train: batch size", ge=1, le=1_048_576)
    evaluate: int = option(3, "train: fresh instances to compare ML-CCG with exact CCG on after training",
                           ge=0, le=10_000)
    compare_exact: bool = option(False, "solve (one instance): also run exact CCG and report the relative error")
    adversary: Literal["milp", "pga", "exact"] = option(
        "pga", "solve: pga: projected gradient ascent, 5 starts x 100 steps (measured best); milp: maximise the "
               "embedded network exactly (HiGHS); exact: each x's true worst case (the network then only ranks "
               "scenarios in the main problem)")
    max_scenarios: int = option(20, "solve: scenarios ML-CCG may add", ge=1, le=10_000)
    output: Path | None = option(None, "generate: the file to write (a folder with count > 1)", writes=True)
    n: int = option(20, "generate: items", ge=1, le=100_000)
    correlation: Literal["UN", "WC", "ASC", "SC"] = option("UN", "generate: profit-weight correlation")
    h: float = option(40.0, "generate: capacity = h / (H + 1) * sum of weights, H = 100", gt=0)
    delta: float = option(0.5, "generate: degradation spread, phat / pbar in [(1 - delta)/2, (1 + delta)/2]",
                          ge=0, le=1)
    budget_factor: float = option(0.1, "generate: Gamma = budget_factor * n", gt=0, le=1)
    count: int = option(1, "generate: how many instances (seeds seed, seed + 1, ...)", ge=1, le=100_000)
    tol: float = option(1e-4, "exact: stop at this relative gap", gt=0)
    time_limit: float | None = option(None, "exact, solve: seconds per instance before stopping with the best "
                                            "bound (default: exact 600, solve 12)", gt=0, le=10000000.0)

    def __post_init__(self) -> None:
        if self.action == "generate" and self.output is None:
            raise ConfigError("action generate needs output (-o FILE, or a folder with --count)")
        if self.action in ("exact", "solve") and self.instance is None:
            raise ConfigError(f"action {self.action} needs an instance file")
        if self.workers is not None and self.executor is not None:
            raise ConfigError("fields 'workers' and 'executor' both say where tasks run: give one (workers N is "
                              "executor local:N)")
        if self.reference is not None and self.action != "solve":
            raise ConfigError("field 'reference' belongs to action solve")
        for name in ("embed", "post"):
            widths = getattr(self, name)
            if len(widths) != 2 or min(widths) < 1:
                raise ConfigError(f"field '{name}' expects two positive widths [hidden, output], found {widths}")
        if len(self.n_range) != 2 or not 1 <= self.n_range[0] <= self.n_range[1]:
            raise ConfigError(f"field 'n_range' expects [smallest, largest] item counts, found {self.n_range}")

    def seconds(self) -> float:
        """The time limit per instance: the field, else 12 s for solve and 600 s otherwise."""
        return self.time_limit if self.time_limit is not None else 12.0 if self.action == "solve" else 600.0
