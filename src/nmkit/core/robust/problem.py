"""What ML-CCG and exact CCG need from a two-stage robust problem (minimisation form).

    min_{x in X} max_{xi in Xi} min_{y in Y(x, xi)} cost(x, xi, y)

A problem supplies its instances (read, write, generate), per-item features for the value network's two branches
(each affine in the decision for a fixed instance), samplers for training data, the exact second stage and the exact
worst case, the exact CCG main problem, and the pieces of the ML-CCG main problem that are not the network: the
first-stage variables with their constraints, and the exact cost of the scenario the network picks.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from nmkit.core.robust.embedding import MILP


@dataclass(frozen=True)
class UncertaintySet:
    """{xi in [low, high]^dim : sum(xi) <= budget} (no budget row when budget is None)."""

    dim: int
    low: float
    high: float
    budget: float | None = None

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """Euclidean projection (for the budget: bisection on the shift tau in clamp(v - tau))."""
        clipped = v.clamp(self.low, self.high)
        if self.budget is None or float(clipped.sum()) <= self.budget:
            return clipped
        low, high = float(v.min()) - self.high, float(v.max()) - self.low
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if float((v - middle).clamp(self.low, self.high).sum()) > self.budget \
                else (low, middle)
        return (v - high).clamp(self.low, self.high)

    def random(self, generator: torch.Generator) -> torch.Tensor:
        return self.project(self.low + (self.high - self.low) * torch.rand(self.dim, generator=generator))

    def add_to(self, model: MILP) -> np.ndarray:
        """xi as continuous MILP variables with the set's rows; returns their indices."""
        xi = model.variables(self.dim, self.low, self.high)
        if self.budget is not None:
            model.constrain(sp.csr_matrix((np.ones(self.dim), (np.zeros(self.dim, int), xi)),
                                          shape=(1, model.width)), -np.inf, self.budget)
        return xi


class ScoringTimeout(Exception):
    """An exact worst-case evaluation ran past its deadline: the decision stays unscored (never guessed)."""


def check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise ScoringTimeout


@dataclass
class WorstCase:
    value: float  # max over xi of the second-stage cost at x
    xi: np.ndarray
    visited: list[tuple[np.ndarray, float]]  # every scenario the row generation's oracle solved, with its value


class RobustProblem(ABC):
    name: str
    x_features: int
    xi_features: int
    joint_encoder: bool  # what encoder "auto" picks, from our measurements (README)

    @abstractmethod
    def read(self, path: Path) -> Any: ...

    @abstractmethod
    def write(self, instance: Any) -> str: ...

    @abstractmethod
    def size(self, instance: Any) -> int:
        """The number of items (the set the encoders sum over)."""

    @abstractmethod
    def uncertainty(self, instance: Any) -> UncertaintySet: ...

    @abstractmethod
    def raw_x(self, instance: Any, x: np.ndarray) -> np.ndarray:
        """[items, x_features], column 0 = x_i and the rest independent of x."""

    @abstractmethod
    def raw_xi(self, instance: Any, xi: np.ndarray) -> np.ndarray:
        """[rows, xi_features], affine in xi (rows: the items, or 1 when xi is not per item)."""

    @abstractmethod
    def sample_x(self, instance: Any, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def sample_xi(self, instance: Any, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def scale(self, instance: Any) -> float:
        """A cost unit for the instance: labels and the ML main problem's rows are measured in it."""

    @abstractmethod
    def first_stage_cost(self, instance: Any, x: np.ndarray) -> float:
        """The part of the cost that does not depend on xi (the network predicts the rest)."""

    @abstractmethod
    def second_stage(self, instance: Any, x: np.ndarray, xi: np.ndarray) -> float: ...

    @abstractmethod
    def worst_case(self, instance: Any, x: np.ndarray, deadline: float | None = None) -> WorstCase:
        """max over xi of the second-stage cost at x, exactly; ScoringTimeout past ``deadline`` (perf_counter)."""

    @abstractmethod
    def main_problem(self, instance: Any, scenarios: list[np.ndarray], time_limit: float, gap: float
                     ) -> tuple[np.ndarray, float]:
        """Exact CCG's main problem (a recourse copy per scenario) solved to the relative MIP ``gap``: its x (the
        incumbent at the time limit) and lower bound (the solver's dual bound)."""

    def committed_plans(self, instance: Any, time_limit: float) -> list[tuple[str, np.ndarray]]:
        """(name, x) of decisions from problem-specific conservative models (e.g. a recourse fixed in advance), as
        extra candidates for the portfolio solver; none by default."""
        return []

    @abstractmethod
    def first_stage(self, model: MILP, instance: Any) -> np.ndarray:
        """Binary x variables and their (robust) constraints in an ML-CCG main problem; returns their indices."""

    @abstractmethod
    def charge_chosen(self, model: MILP, instance: Any, x: np.ndarray, pick: np.ndarray,
                      scenarios: list[np.ndarray]) -> int:
        """One recourse and a variable z >= (cost of scenario k at x and that recourse - first stage) / scale
        whenever pick[k] = 1; returns z's index."""

    def robust_cost(self, instance: Any, x: np.ndarray) -> float:
        return self.first_stage_cost(instance, x) + self.worst_case(instance, x).value
