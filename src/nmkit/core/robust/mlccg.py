"""ML-CCG, Neur2RO's loop (Dumouchelle et al. 2024, Alg. 1; ``05_run_ml_ccg.py``), on HiGHS, for any problem.

Main problem over x and one true recourse: the embedded value network predicts each added scenario's second-stage
value at x; binaries s_k pick the scenario with the largest prediction (a >= pred_k, a <= pred_k + M (1 - s_k),
sum s = 1) and the problem charges that scenario's cost exactly (big-M rows on s_k). The x branch enters affinely
(binary x and a bias-free per-item net), so only the post-aggregation and value layers need ReLU binaries.
Adversarial problem: max over the uncertainty set of the predicted value at the fixed x, either exactly as a MILP
(the whole xi branch embedded, big-M ReLUs with interval bounds over the set's box) or by projected gradient ascent
(Adam, several random starts). The loop stops when the adversary's prediction does not exceed the main problem's
by more than tol (relative), when its scenario repeats, or after max_scenarios. The returned x is scored by the
exact worst case: the reported objective is true, not predicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from nmkit.core.errors import RunError
from nmkit.core.robust import embedding as em
from nmkit.core.robust.highs import solve_milp
from nmkit.core.robust.network import ValueModel, as_batch

ADVERSARIES = ("milp", "pga")


@dataclass
class MainSolution:
    x: np.ndarray
    predictions: np.ndarray  # the embedded network's pred_k at the optimum, per scenario
    chosen: int


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
    milp, net, k = em.MILP(), model.net, len(scenarios)
    x = model.problem.first_stage(milp, instance)
    s0, slope = x_embedding_affine(model, instance)
    embedded = em.Affine(sp.csr_matrix(slope) @ milp.identity(x).matrix, s0)
    low, high = s0 + np.minimum(slope, 0).sum(1), s0 + np.maximum(slope, 0).sum(1)
    p_x, p_low, p_high = em.mlp(milp, embedded, low, high, net.rho_x)
    predictions = [em.mlp(milp, *_joined(milp, p_x, p_low, p_high, _p_xi(model, instance, xi)), net.psi)
                   for xi in scenarios]
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
    result = solve_milp(objective, **milp.scipy_form(), options={"mip_rel_gap": 1e-6, "time_limit": time_limit})
    if result.x is None:
        raise RunError(f"ML-CCG main problem failed: {result.message}")
    values = np.array([float((p.widened(milp.width) @ result.x)[0] + p.constant[0]) for p, _, _ in predictions])
    return MainSolution(np.round(result.x[x]), values, int(np.argmax(np.round(result.x[pick]))))


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
    with torch.no_grad():
        p_x = model.net.encode_x(as_batch(model.x_features(instance, x)))

    def predicted(xi: torch.Tensor) -> torch.Tensor:
        return model.net.value(p_x, model.net.encode_xi((base + torch.einsum("d,dnf->nf", xi, steps_j))[None]))

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
    """max over the uncertainty set of the predicted value at x, as a MILP: every item's phi_xi (inputs affine in
    xi), rho_xi and psi embedded with big-M ReLUs; bounds by interval arithmetic over the set's box."""
    uncertainty, net = model.problem.uncertainty(instance), model.net
    milp = em.MILP()
    xi = uncertainty.add_to(milp)
    base, steps = model.xi_affine(instance)
    box_low, box_high = np.full(uncertainty.dim, uncertainty.low), np.full(uncertainty.dim, uncertainty.high)
    total, total_low, total_high = None, 0.0, 0.0
    for item in range(base.shape[0]):
        weight = steps[:, item, :].T  # [features, dim]
        features = em.Affine(sp.csr_matrix(weight) @ milp.identity(xi).matrix, base[item])
        low, high = em.interval(weight, base[item], box_low, box_high)
        out, out_low, out_high = em.mlp(milp, features, low, high, net.phi_xi)
        matrix = out.widened(milp.width)
        total = em.Affine(matrix, out.constant) if total is None else \
            em.Affine(total.widened(milp.width) + matrix, total.constant + out.constant)
        total_low, total_high = total_low + out_low, total_high + out_high
    p_xi, p_low, p_high = em.mlp(milp, total, total_low, total_high, net.rho_xi)
    with torch.no_grad():
        p_x = net.encode_x(as_batch(model.x_features(instance, x)))[0].double().numpy()
    matrix = sp.vstack([sp.csr_matrix((len(p_x), milp.width)), p_xi.widened(milp.width)]).tocsr()
    joined = em.Affine(matrix, np.concatenate([p_x, p_xi.constant]))
    value, _, _ = em.mlp(milp, joined, np.concatenate([p_x, p_low]), np.concatenate([p_x, p_high]), net.psi)
    objective = -np.asarray(value.widened(milp.width).todense()).ravel()
    result = solve_milp(objective, **milp.scipy_form(), options={"mip_rel_gap": gap, "time_limit": time_limit})
    if result.x is None:
        raise RunError(f"ML-CCG adversarial problem failed: {result.message}")
    found = np.clip(result.x[xi], uncertainty.low, uncertainty.high)
    return found, model.predict(instance, x, found)


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
    start = time.perf_counter()
    scenarios = [np.zeros(model.problem.uncertainty(instance).dim)]
    stop, iterations = "max scenarios", 0
    while True:
        iterations += 1
        remaining = lambda: max(time_limit - (time.perf_counter() - start), 1.0)  # noqa: E731
        main = main_problem(model, instance, scenarios, remaining())
        if adversary == "milp":
            xi, predicted = adversary_milp(model, instance, main.x, time_limit=remaining())
        else:
            xi, predicted = adversary_pga(model, instance, main.x, seed=seed + iterations)
        incumbent = float(main.predictions.max())
        if predicted - incumbent <= tol * max(abs(predicted), 1e-9):
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
    return MLCCGResult(main.x, -model.problem.robust_cost(instance, main.x), iterations, len(scenarios),
                       solve_seconds, stop)
