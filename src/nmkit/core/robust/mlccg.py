"""ML-CCG, Neur2RO's loop (Dumouchelle et al. 2024, Alg. 1; ``05_run_ml_ccg.py``), on HiGHS, for any problem.

Main problem over x and one true recourse: the embedded value network predicts each added scenario's second-stage
value at x; binaries s_k pick the scenario with the largest prediction (a >= pred_k, a <= pred_k + M (1 - s_k),
sum s = 1) and the problem charges that scenario's cost exactly (big-M rows on s_k). The x branch enters affinely
(binary x and a bias-free per-item net), so only the post-aggregation and value layers need ReLU binaries.
Adversarial problem: max over the uncertainty set of the predicted value at the fixed x, either exactly as a MILP
(the network's xi side embedded; see adversary_milp) or by projected gradient ascent (Adam, several random
starts); or, outside the paper, the exact worst case itself (see ml_ccg). The loop stops when the adversary's
prediction does not exceed the main problem's by more than tol (relative), when its scenario repeats, or after
max_scenarios. The returned x is scored by the
exact worst case: the reported objective is true, not predicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from nmkit.core.robust import embedding as em
from nmkit.core.robust.network import ValueModel, as_batch


@dataclass
class MainSolution:
    x: np.ndarray
    predictions: np.ndarray  # the embedded network's pred_k at the optimum, per scenario
    chosen: int
    cost: float  # the objective: first-stage cost + the exact cost of the chosen scenario


def x_embedding_affine(model: ValueModel, instance: Any) -> tuple[np.ndarray, np.ndarray]:
    """(s0, D) with sum_i phi_x(features_i(x)) = s0 + D x for every binary x."""
    items = model.problem.size(instance)
    with torch.no_grad():
        off = model.net.phi_x(as_batch(model.x_features(instance, np.zeros(items))))[0].double().numpy()
        on = model.net.phi_x(as_batch(model.x_features(instance, np.ones(items))))[0].double().numpy()
    return off.sum(0), (on - off).T


def _p_xi(model: ValueModel, instance: Any, xi: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.net.encode_xi(as_batch(model.xi_features(instance, xi)))[0].double().numpy()


def main_problem(model: ValueModel, instance: Any, scenarios: list[np.ndarray],
                 time_limit: float = 60.0) -> MainSolution:
    milp, k = em.MILP(), len(scenarios)
    x = model.problem.first_stage(milp, instance)
    predictions = (_joint_predictions if model.net.dims.joint else _separate_predictions)(milp, model, instance, x,
                                                                                           scenarios)
    highest, lowest = max(h[0] for _, _, h in predictions), min(lo[0] for _, lo, _ in predictions)
    spread = highest - lowest + 1.0
    a = milp.variables(1, lowest - 1.0, highest + 1.0)[0]
    pick = milp.variables(k, 0, 1, integer=True)
    milp.constrain(em.row(milp.width, pick), 1.0, 1.0)
    for j, (pred, _, _) in enumerate(predictions):
        expression = pred.widened(milp.width)
        milp.constrain(em.row(milp.width, a) - expression, pred.constant[0], np.inf)  # a >= pred_j
        milp.constrain(em.row(milp.width, [a, pick[j]], [1.0, spread]) - expression, -np.inf,
                       pred.constant[0] + spread)  # a <= pred_j + spread (1 - s_j)
    z = model.problem.charge_chosen(milp, instance, x, pick, scenarios)
    objective = np.zeros(milp.width)
    objective[x] = [model.problem.first_stage_cost(instance, unit) for unit in np.eye(len(x))]
    objective[x] /= model.problem.scale(instance)
    objective[z] = 1.0
    result = milp.minimise(objective, gap=1e-6, time_limit=time_limit, what="ML-CCG main problem")
    values = np.array([float((p.widened(milp.width) @ result.x)[0] + p.constant[0]) for p, _, _ in predictions])
    return MainSolution(np.round(result.x[x]), values, int(np.argmax(np.round(result.x[pick]))),
                        float(result.fun) * model.problem.scale(instance))


def _separate_predictions(milp: em.MILP, model: ValueModel, instance: Any, x: np.ndarray,
                          scenarios: list[np.ndarray]) -> list[tuple[em.Affine, np.ndarray, np.ndarray]]:
    """Neur2RO's encoder: p_x = rho_x(s0 + D x) embedded once, then psi([p_x, p_xi^k]) per scenario."""
    net = model.net
    s0, slope = x_embedding_affine(model, instance)
    embedded = em.Affine(sp.csr_matrix(slope) @ milp.identity(x).matrix, s0)
    low, high = s0 + np.minimum(slope, 0).sum(1), s0 + np.maximum(slope, 0).sum(1)
    p_x, p_low, p_high = em.mlp(milp, embedded, low, high, net.rho_x)
    return [em.mlp(milp, *_joined(milp, p_x, p_low, p_high, _p_xi(model, instance, xi)), net.psi) for xi in scenarios]


def joint_embedding_affine(model: ValueModel, instance: Any, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The joint encoder at a fixed scenario: (s0, D) with sum_i phi([x_i, xi_i]) = s0 + D x for every binary x."""
    items, net = model.problem.size(instance), model.net
    xi_features = model.xi_features(instance, xi)
    with torch.no_grad():
        off, on = (net.phi(as_batch(np.hstack([model.x_features(instance, np.full(items, value)), xi_features])))[0]
                   .double().numpy() for value in (0.0, 1.0))
    return off.sum(0), (on - off).T


def _joint_predictions(milp: em.MILP, model: ValueModel, instance: Any, x: np.ndarray,
                       scenarios: list[np.ndarray]) -> list[tuple[em.Affine, np.ndarray, np.ndarray]]:
    """The joint encoder: per scenario, the affine item sum s0 + D x, then psi."""
    predictions = []
    for xi in scenarios:
        s0, slope = joint_embedding_affine(model, instance, xi)
        embedded = em.Affine(sp.csr_matrix(slope) @ milp.identity(x).matrix, s0)
        low, high = s0 + np.minimum(slope, 0).sum(1), s0 + np.maximum(slope, 0).sum(1)
        predictions.append(em.mlp(milp, embedded, low, high, model.net.psi))
    return predictions


def _joined(milp: em.MILP, p_x: em.Affine, p_low: np.ndarray, p_high: np.ndarray, p_xi: np.ndarray
            ) -> tuple[em.Affine, np.ndarray, np.ndarray]:
    """psi's input [p_x (an expression), p_xi (constants)] with its bounds."""
    matrix = sp.vstack([p_x.widened(milp.width), sp.csr_matrix((len(p_xi), milp.width))]).tocsr()
    return (em.Affine(matrix, np.concatenate([p_x.constant, p_xi])), np.concatenate([p_low, p_xi]),
            np.concatenate([p_high, p_xi]))


def adversary_pga(model: ValueModel, instance: Any, x: np.ndarray, *, starts: int = 5, steps: int = 100,
                  lr: float = 0.05, seed: int = 0) -> tuple[np.ndarray, float]:
    """max over the uncertainty set of the predicted second-stage value at x, by projected Adam ascent."""
    generator = torch.Generator().manual_seed(seed)
    uncertainty = model.problem.uncertainty(instance)
    base, steps_j = (torch.from_numpy(a.astype(np.float32)) for a in model.xi_affine(instance))
    x_features = as_batch(model.x_features(instance, x))

    def predicted(xi: torch.Tensor) -> torch.Tensor:
        return model.net(x_features, (base + torch.einsum("d,dnf->nf", xi, steps_j))[None])

    best, best_value = None, -np.inf
    for _ in range(starts):
        xi = uncertainty.random(generator).requires_grad_(True)
        optimiser = torch.optim.Adam([xi], lr=lr)
        for _ in range(steps):
            optimiser.zero_grad()
            (-predicted(xi).sum()).backward()
            optimiser.step()
            with torch.no_grad():
                xi.copy_(uncertainty.project(xi))
        with torch.no_grad():
            value = float(predicted(xi))
        if value > best_value:
            best, best_value = xi.detach().double().numpy(), value
    return best, best_value


def adversary_milp(model: ValueModel, instance: Any, x: np.ndarray, *, time_limit: float = 60.0,
                   gap: float = 1e-3) -> tuple[np.ndarray, float]:
    """max over the uncertainty set of the predicted value at x, as a MILP: the per-item encoder (phi_xi, or the
    joint phi with x's features as constants) for every item, then the rest of the network, embedded with big-M
    ReLUs and interval bounds over the set's box; an item whose features follow a single coordinate of xi (the
    knapsack's xi_i) is embedded exactly as a piecewise-linear function of it instead."""
    uncertainty, net = model.problem.uncertainty(instance), model.net
    milp = em.MILP()
    xi = uncertainty.add_to(milp)
    base, steps = model.xi_affine(instance)
    if net.dims.joint:  # phi sees [x features (constants here), xi features]
        x_features = model.x_features(instance, x).astype(np.float64)
        base = np.concatenate([x_features, base], axis=1)
        steps = np.concatenate([np.zeros((steps.shape[0], *x_features.shape)), steps], axis=2)
    total, total_low, total_high = _item_sum(milp, uncertainty, xi, base, steps, net.phi if net.dims.joint
                                             else net.phi_xi)
    if net.dims.joint:
        value, _, _ = em.mlp(milp, total, total_low, total_high, net.psi)
    else:
        p_xi, p_low, p_high = em.mlp(milp, total, total_low, total_high, net.rho_xi)
        with torch.no_grad():
            p_x = net.encode_x(as_batch(model.x_features(instance, x)))[0].double().numpy()
        matrix = sp.vstack([sp.csr_matrix((len(p_x), milp.width)), p_xi.widened(milp.width)]).tocsr()
        joined = em.Affine(matrix, np.concatenate([p_x, p_xi.constant]))
        value, _, _ = em.mlp(milp, joined, np.concatenate([p_x, p_low]), np.concatenate([p_x, p_high]), net.psi)
    objective = -np.asarray(value.widened(milp.width).todense()).ravel()
    result = milp.minimise(objective, gap=gap, time_limit=time_limit, what="ML-CCG adversarial problem")
    found = np.clip(result.x[xi], uncertainty.low, uncertainty.high)
    return found, model.predict(instance, x, found)


def _item_sum(milp: em.MILP, uncertainty, xi: np.ndarray, base: np.ndarray, steps: np.ndarray,
              phi) -> tuple[em.Affine, np.ndarray, np.ndarray]:
    """sum over rows of phi(base_i + sum_j xi_j steps_j,i) embedded, with its bounds: an item whose features follow
    a single coordinate of xi exactly as a piecewise-linear function of it, others with big-M ReLUs."""
    box_low, box_high = np.full(uncertainty.dim, uncertainty.low), np.full(uncertainty.dim, uncertainty.high)
    total, total_low, total_high = None, 0.0, 0.0
    for item in range(base.shape[0]):
        weight = steps[:, item, :].T  # [features, dim]
        moving = np.flatnonzero(np.abs(weight).sum(0))
        if len(moving) == 1:
            out, out_low, out_high = em.scalar_mlp(milp, xi[moving[0]], uncertainty.low, uncertainty.high,
                                                   base[item], weight[:, moving[0]], phi)
        else:
            features = em.Affine(sp.csr_matrix(weight) @ milp.identity(xi).matrix, base[item])
            low, high = em.interval(weight, base[item], box_low, box_high)
            out, out_low, out_high = em.mlp(milp, features, low, high, phi)
        matrix = out.widened(milp.width)
        total = em.Affine(matrix, out.constant) if total is None else \
            em.Affine(total.widened(milp.width) + matrix, total.constant + out.constant)
        total_low, total_high = total_low + out_low, total_high + out_high
    return total, total_low, total_high


@dataclass
class MLCCGResult:
    x: np.ndarray
    objective: float  # true robust objective of x as a profit (exact worst case)
    iterations: int
    scenarios: int
    seconds: float  # ML-CCG itself, without the exact scoring
    stop: str


def ml_ccg(model: ValueModel, instance: Any, *, adversary: str = "pga", tol: float = 1e-4, max_scenarios: int = 20,
           time_limit: float = 600.0, seed: int = 0) -> MLCCGResult:
    """The loop. With adversary "exact" the scenario added is each x's true worst case (the exact evaluator), the
    network still picks the worst added scenario in the main problem, the loop stops once the main problem's
    charged cost is x's true robust cost, and the best x seen (all are scored exactly) is returned."""
    start = time.perf_counter()
    problem = model.problem
    scenarios = [np.zeros(problem.uncertainty(instance).dim)]
    stop, iterations, best = "max scenarios", 0, (np.inf, None)
    while True:
        iterations += 1
        remaining = lambda: max(time_limit - (time.perf_counter() - start), 1.0)  # noqa: E731
        main = main_problem(model, instance, scenarios, remaining())
        if adversary == "exact":
            worst = problem.worst_case(instance, main.x)
            cost = problem.first_stage_cost(instance, main.x) + worst.value
            best = min(best, (cost, main.x), key=lambda pair: pair[0])
            xi, converged = worst.xi, cost - main.cost <= tol * max(abs(cost), 1e-9)
        else:
            if adversary == "milp":
                xi, predicted = adversary_milp(model, instance, main.x, time_limit=remaining())
            else:
                xi, predicted = adversary_pga(model, instance, main.x, seed=seed + iterations)
            incumbent = float(main.predictions.max())
            converged = predicted - incumbent <= tol * max(abs(predicted), 1e-9)
        if converged:
            stop = "converged"
            break
        if min(np.abs(xi - s).sum() for s in scenarios) < 1e-3:
            stop = "repeated scenario"
            break
        if len(scenarios) >= max_scenarios or time.perf_counter() - start > time_limit:
            stop = "max scenarios" if len(scenarios) >= max_scenarios else "time limit"
            break
        scenarios.append(xi)
    solve_seconds = time.perf_counter() - start
    if adversary == "exact":
        return MLCCGResult(best[1], -best[0], iterations, len(scenarios), solve_seconds, stop)
    return MLCCGResult(main.x, -problem.robust_cost(instance, main.x), iterations, len(scenarios), solve_seconds,
                       stop)
