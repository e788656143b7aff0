"""Two-stage robust capital budgeting (Subramanyam, Gounaris and Wiesemann 2020; Neur2RO's ``cb.py``, loans off)
as a ``RobustProblem``: instances, generator, file format, exact second stage, worst case and CCG main problem.

Project i has nominal cost cbar_i and revenue rbar_i = cbar_i / 5; factor loadings Phi_i, Psi_i in the simplex of
R^4; xi in [-1, 1]^4. Cost c_i(xi) = (1 + Phi_i . xi / 2) cbar_i, revenue r_i(xi) = (1 + Psi_i . xi / 2) rbar_i.
x_i: invest now; y_i: invest later at a fraction k = 0.8 of the revenue. x + y <= 1, c(xi) . (x + y) <= B.
Minimisation form: cost(x, xi, y) = -r(xi) . (x + k y). Constraint uncertainty: x must leave y = 0 feasible for
every xi, i.e. max_xi c(xi) . x = 1.5 cbar . x <= B (each Phi_i sums to 1), which the main problems impose exactly.
Generator: cbar ~ U[1, 10], B = sum(cbar) / 2, Phi_i and Psi_i the gaps of sorted {0, u1, u2, u3, 1}, u ~ U[0, 1].
File: a line ``n B k``, then one line ``cbar rbar Phi_1..Phi_4 Psi_1..Psi_4`` per project.

Worst case for a fixed x: a recourse y is either feasible at xi, and then bounds the cost from above by
-r(xi) . (x + k y) (affine in xi), or the adversary makes it infeasible (c(xi) . (x + y) >= B + eps). So
max_xi Q(x, xi) is a MILP over (xi, z, u) with one binary u_j per recourse found so far; row generation adds the
oracle's recourse at the MILP's xi until the oracle agrees with z.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint

from nmkit.core import io
from nmkit.core.errors import InputError, RunError
from nmkit.core.robust.embedding import MILP, pairs, row
from nmkit.core.robust.instances import MAX_MAGNITUDE
from nmkit.core.robust.problem import RobustProblem, ScoringTimeout, UncertaintySet, WorstCase, check_deadline
from nmkit.core.robust.solvers import dual_bound, solve_milp

FACTORS = 4
MIP_GAP = 1e-9


@dataclass(frozen=True)
class CapitalBudget:
    cbar: np.ndarray
    rbar: np.ndarray
    phi: np.ndarray  # [n, 4]
    psi: np.ndarray
    budget: float
    late_fraction: float = 0.8

    @property
    def n(self) -> int:
        return len(self.cbar)

    def costs(self, xi: np.ndarray) -> np.ndarray:
        return self.cbar * (1 + self.phi @ xi / 2)

    def revenues(self, xi: np.ndarray) -> np.ndarray:
        return self.rbar * (1 + self.psi @ xi / 2)


def generate_capital_budget(n: int, rng: np.random.Generator) -> CapitalBudget:
    cbar = rng.uniform(1, 10, n)

    def loadings() -> np.ndarray:
        cuts = np.sort(rng.random((n, FACTORS - 1)), axis=1)
        return np.diff(np.hstack([np.zeros((n, 1)), cuts, np.ones((n, 1))]), axis=1)

    return CapitalBudget(cbar, cbar / 5, loadings(), loadings(), float(cbar.sum() / 2))


def write_capital_budget(instance: CapitalBudget) -> str:
    lines = [f"{instance.n} {instance.budget!r} {instance.late_fraction!r}"]
    lines += [" ".join(repr(float(v)) for v in (c, r, *phi, *psi))
              for c, r, phi, psi in zip(instance.cbar, instance.rbar, instance.phi, instance.psi, strict=True)]
    return "\n".join(lines) + "\n"


def read_capital_budget(path: Path) -> CapitalBudget:
    """nmkit's format, or Neur2RO's evaluation files (``CB_n{n}_xi4_s{seed}``, from the k-adaptability study):
    a line ``seed n 4 B max_loan``, the n costs, the n revenues, then n Phi rows and n Psi rows of 4 numbers.
    Their late fraction is Neur2RO's k = 0.8 (loans off); B is read as written (Neur2RO's reader truncates it to
    an integer)."""
    width = 2 + 2 * FACTORS
    expected = "'n B k' then n lines 'cbar rbar Phi(4) Psi(4)', or Neur2RO's 'seed n 4 B max_loan' layout"
    rows = io.read_number_lines(path, f"instance {path}", expected, limit=MAX_MAGNITUDE)
    if len(rows[0]) == 5:
        return _read_neur2ro_layout(path, rows)
    if len(rows[0]) != 3 or rows[0][0] != int(rows[0][0]) or rows[0][0] < 1:
        raise InputError(f"instance {path}: the first line must be 'n B k' with a whole n >= 1")
    if any(len(row) < width for row in rows[1:]):
        raise InputError(f"instance {path}: a project line with fewer than {width} numbers; expected {expected}")
    n, budget, fraction = int(rows[0][0]), rows[0][1], rows[0][2]
    items = np.array([row[-width:] for row in rows[1:]]).reshape(-1, width)
    if items.shape != (n, width):
        raise InputError(f"instance {path}: header says {n} projects, found {len(items)} lines of {width} numbers")
    return _checked(path, items, budget, fraction)


def _checked(path: Path, items: np.ndarray, budget: float, fraction: float) -> CapitalBudget:
    """Rows [cbar, rbar, Phi(4), Psi(4)] per project, validated."""
    if np.any(items[:, 0] <= 0) or budget <= 0 or not 0 <= fraction <= 1:
        raise InputError(f"instance {path}: costs and the budget must be positive and k in [0, 1]")
    for name, block in (("Phi", items[:, 2:2 + FACTORS]), ("Psi", items[:, 2 + FACTORS:])):
        if np.any(block < -1e-9) or np.any(np.abs(block.sum(1) - 1.0) > 1e-6):
            raise InputError(f"instance {path}: every {name} row must be non-negative and sum to 1")
    return CapitalBudget(items[:, 0], items[:, 1], items[:, 2:2 + FACTORS], items[:, 2 + FACTORS:], budget, fraction)


def _read_neur2ro_layout(path: Path, rows: list[list[float]]) -> CapitalBudget:
    seed, n, dim, budget, _ = rows[0]
    if n != int(n) or n < 1 or dim != FACTORS:
        raise InputError(f"instance {path}: the first line 'seed n xi_dim B max_loan' needs a whole n >= 1 and "
                         f"xi_dim {FACTORS}")
    n = int(n)
    if len(rows) != 3 + 2 * n or [len(row) for row in rows[1:]] != [n, n] + [FACTORS] * (2 * n):
        raise InputError(f"instance {path}: expected {n} costs, {n} revenues, then {2 * n} lines of {FACTORS} "
                         f"loadings after the first line")
    cbar, rbar = np.array(rows[1]), np.array(rows[2])
    loadings = np.array(rows[3:])
    items = np.column_stack([cbar, rbar, loadings[:n], loadings[n:]])
    return _checked(path, items, budget, 0.8)


def recourse(instance: CapitalBudget, x: np.ndarray, xi: np.ndarray) -> tuple[float, np.ndarray]:
    """Q(x, xi) = min_y -r(xi) . (x + k y) over y <= 1 - x, c(xi) . y <= B - c(xi) . x; and the optimal y."""
    costs, revenues = instance.costs(xi), instance.revenues(xi)
    room = instance.budget - costs @ x
    if room < -1e-9:
        raise RunError(f"x is infeasible at xi = {np.round(xi, 4).tolist()}: c(xi) . x exceeds the budget")
    result = solve_milp(-instance.late_fraction * revenues, integrality=np.ones(instance.n),
                        bounds=Bounds(0, 1 - x), constraints=LinearConstraint(costs[None, :], -np.inf, max(room, 0)),
                        options={"mip_rel_gap": MIP_GAP})
    if result.x is None:
        raise RunError(f"second-stage MILP failed: {result.message}")
    y = np.round(result.x)
    return float(-revenues @ (x + instance.late_fraction * y)), y


class CapitalBudgetingProblem(RobustProblem):
    name = "capital_budgeting"
    x_features = 12  # [x_i, cbar_i, rbar_i, Phi_i, Psi_i, B]
    xi_features = FACTORS  # xi itself, as a set of one: xi is shared by all projects, which the x branch describes
    joint_encoder = True

    def read(self, path: Path) -> CapitalBudget:
        return read_capital_budget(path)

    def write(self, instance: CapitalBudget) -> str:
        return write_capital_budget(instance)

    def size(self, instance: CapitalBudget) -> int:
        return instance.n

    def uncertainty(self, instance: CapitalBudget) -> UncertaintySet:
        return UncertaintySet(FACTORS, -1.0, 1.0)

    def raw_x(self, instance: CapitalBudget, x: np.ndarray) -> np.ndarray:
        return np.column_stack([x, instance.cbar, instance.rbar, instance.phi, instance.psi,
                                np.full(instance.n, instance.budget)])

    def raw_xi(self, instance: CapitalBudget, xi: np.ndarray) -> np.ndarray:
        """One row, xi: the MILP adversary then embeds one phi_xi instead of one per project."""
        return np.asarray(xi, dtype=float)[None, :]

    def sample_x(self, instance: CapitalBudget, rng: np.random.Generator) -> np.ndarray:
        """Bernoulli(1 - p), p ~ U(0, 1), then random projects dropped until x is robustly feasible."""
        x = (rng.random(instance.n) < 1 - rng.random()).astype(float)
        for i in rng.permutation(instance.n):
            if 1.5 * instance.cbar @ x <= instance.budget:
                break
            x[i] = 0.0
        return x

    def sample_xi(self, instance: CapitalBudget, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1, 1, FACTORS)

    def scale(self, instance: CapitalBudget) -> float:
        return float(1.5 * instance.rbar.sum())

    def first_stage_cost(self, instance: CapitalBudget, x: np.ndarray) -> float:
        return 0.0  # the revenue of x depends on xi, so all of it is in the second-stage value

    def second_stage(self, instance: CapitalBudget, x: np.ndarray, xi: np.ndarray) -> float:
        return recourse(instance, x, xi)[0]

    def worst_case(self, instance: CapitalBudget, x: np.ndarray, deadline: float | None = None,
                   tol: float = 1e-6) -> WorstCase:
        """The exact adversary by row generation over recourses (see the module docstring)."""
        n, k = instance.n, instance.late_fraction
        epsilon = 1e-5 * max(instance.budget, 1.0)
        recourses, visited = [np.zeros(n)], []
        while True:
            check_deadline(deadline)
            model = MILP()
            xi = model.variables(FACTORS, -1.0, 1.0)
            z = model.variables(1, -np.inf, 0.0)[0]  # bounded below by the y = 0 row; a finite bound upset HiGHS
            switches = model.variables(len(recourses) - 1, 0, 1, integer=True)  # u_j = 1: y_j made infeasible
            for j, y in enumerate(recourses):
                weights, used = instance.rbar * (x + k * y), x + y
                offset, slope = -weights.sum(), -0.5 * instance.psi.T @ weights  # cost of y_j = offset + slope.xi
                if j == 0:
                    model.constrain(row(model.width, [z, *xi], [1.0, *-slope]), -np.inf, offset)
                    continue
                u = switches[j - 1]
                big = np.abs(slope).sum() - offset
                model.constrain(row(model.width, [z, *xi, u], [1.0, *-slope, -big]), -np.inf, offset)
                base, spend = instance.cbar @ used, 0.5 * instance.phi.T @ (instance.cbar * used)
                big_feasible = max(instance.budget + epsilon - (base - np.abs(spend).sum()), 0.0)
                model.constrain(row(model.width, [*xi, u], [*spend, -big_feasible]),
                                instance.budget + epsilon - big_feasible - base, np.inf)
            objective = np.zeros(model.width)
            objective[z] = -1.0
            limit = None if deadline is None else max(deadline - time.perf_counter(), 0.1)
            result = model.minimise(objective, gap=MIP_GAP, time_limit=limit, what="adversarial MILP")
            if result.status != 0:  # stopped at the deadline: no exact value
                raise ScoringTimeout
            scenario, bound = np.clip(result.x[xi], -1, 1), float(result.x[z])
            value, y = recourse(instance, x, scenario)
            visited.append((scenario, value))
            repeated = any(np.array_equal(y, seen) for seen in recourses)
            if value >= bound - tol * max(1.0, abs(bound)) or repeated:
                return WorstCase(value, scenario, visited)
            recourses.append(y)

    def main_problem(self, instance: CapitalBudget, scenarios: list[np.ndarray], time_limit: float,
                     gap: float = MIP_GAP) -> tuple[np.ndarray, float]:
        """min_x, theta theta with theta >= -r(xi^k) . (x + k y^k) and c(xi^k) . (x + y^k) <= B for every k."""
        model = MILP()
        x = self.first_stage(model, instance)
        theta = model.variables(1, -np.inf, np.inf)[0]
        for xi in scenarios:
            y = self._late_investments(model, instance, x)
            revenues = instance.revenues(xi)
            model.constrain(row(model.width, [theta, *x, *y], [1.0, *revenues,
                                                                *instance.late_fraction * revenues]), 0.0, np.inf)
            model.constrain(row(model.width, [*x, *y], np.tile(instance.costs(xi), 2)), -np.inf, instance.budget)
        objective = np.zeros(model.width)
        objective[theta] = 1.0
        result = model.minimise(objective, gap=gap, time_limit=time_limit, what="main problem")
        return np.round(result.x[x]), dual_bound(result)

    def first_stage(self, model: MILP, instance: CapitalBudget) -> np.ndarray:
        x = model.variables(instance.n, 0, 1, integer=True)
        model.constrain(row(model.width, x, 1.5 * instance.cbar), -np.inf, instance.budget)  # robust feasibility
        return x

    def charge_chosen(self, model: MILP, instance: CapitalBudget, x: np.ndarray, pick: np.ndarray,
                      scenarios: list[np.ndarray]) -> int:
        scale, k = self.scale(instance), instance.late_fraction
        y = self._late_investments(model, instance, x)
        low, high = -(1 + k), 0.0  # cost / scale of any (x, y)
        z = model.variables(1, low, high)[0]
        overspend = 1.5 * instance.cbar.sum() - instance.budget
        for j, xi in enumerate(scenarios):
            revenues, costs = instance.revenues(xi) / scale, instance.costs(xi)
            # z >= -r(xi) . (x + k y) / scale - (high - low) (1 - s_j)
            model.constrain(row(model.width, [z, *x, *y, pick[j]], [1.0, *revenues, *k * revenues, -(high - low)]),
                            low - high, np.inf)
            # c(xi) . (x + y) <= B + overspend (1 - s_j)
            model.constrain(row(model.width, [*x, *y, pick[j]], [*costs, *costs, overspend]), -np.inf,
                            instance.budget + overspend)
        return z

    @staticmethod
    def _late_investments(model: MILP, instance: CapitalBudget, x: np.ndarray) -> np.ndarray:
        y = model.variables(instance.n, 0, 1, integer=True)
        model.constrain(pairs(model.width, y, x, 1.0), -np.inf, 1.0)  # x + y <= 1
        return y
