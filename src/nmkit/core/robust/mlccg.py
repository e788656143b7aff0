"""ML-CCG, Neur2RO's loop (Dumouchelle et al. 2024, Alg. 1; ``05_run_ml_ccg.py``), on HiGHS.

Main problem over x and one true recourse (y, r): the embedded value network predicts each added scenario's
second-stage value at x; binaries s_k pick the scenario with the largest prediction (a >= pred_k,
a <= pred_k + M (1 - s_k), sum s = 1) and that scenario's cost is charged exactly through big-M rows
z >= cost_k(y, r) - M' (1 - s_k). Objective min (f - pbar) . x + z. The x branch enters affinely (binary x and a
bias-free per-item net), so only the post-aggregation and value layers need ReLU binaries.
Adversarial problem: max over the uncertainty set of the predicted value at the fixed x, by projected gradient
ascent (Adam, several random starts). The loop stops when the adversary's prediction does not exceed the main
problem's by more than tol (relative), when its scenario repeats, or after max_scenarios. The returned x is
scored by the exact worst case (knapsack.worst_case): the reported objective is true, not predicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from nmkit.core.errors import RunError
from nmkit.core.robust import embedding as em
from nmkit.core.robust.instances import Knapsack
from nmkit.core.robust.knapsack import _milp, first_stage_cost, worst_case
from nmkit.core.robust.network import FeatureScaler, SetEncoder


@dataclass
class MainSolution:
    x: np.ndarray
    predictions: np.ndarray  # the embedded network's pred_k at the optimum, per scenario
    chosen: int


def _tensor(features: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(features.astype(np.float32)).unsqueeze(0)


def x_embedding_affine(net: SetEncoder, scaler: FeatureScaler, instance: Knapsack) -> tuple[np.ndarray, np.ndarray]:
    """(s0, D) with sum_i phi_x(features_i(x)) = s0 + D x for every binary x."""
    with torch.no_grad():
        off = net.phi_x(_tensor(scaler.features(instance, np.zeros(instance.n))))[0].double().numpy()
        on = net.phi_x(_tensor(scaler.features(instance, np.ones(instance.n))))[0].double().numpy()
    return off.sum(0), (on - off).T


def main_problem(instance: Knapsack, net: SetEncoder, scaler: FeatureScaler, scenarios: list[np.ndarray],
                 time_limit: float = 60.0) -> MainSolution:
    n, k = instance.n, len(scenarios)
    model = em.MILP()
    x = model.variables(n, 0, 1, integer=True)
    s0, slope = x_embedding_affine(net, scaler, instance)
    embedded = em.Affine(sp.csr_matrix(slope) @ model.identity(x).matrix, s0)
    low, high = s0 + np.minimum(slope, 0).sum(1), s0 + np.maximum(slope, 0).sum(1)
    p_x, p_low, p_high = em.mlp(model, embedded, low, high, net.rho_x)
    predictions = []
    for xi in scenarios:
        with torch.no_grad():
            p_xi = net.encode_xi(_tensor(scaler.features(instance, xi)))[0].double().numpy()
        joined = em.Affine(sp.vstack([p_x.widened(model.width), sp.csr_matrix((len(p_xi), model.width))]).tocsr(),
                           np.concatenate([p_x.constant, p_xi]))
        predictions.append(em.mlp(model, joined, np.concatenate([p_low, p_xi]), np.concatenate([p_high, p_xi]),
                                  net.psi))
    highest, lowest = max(h[0] for _, _, h in predictions), min(lo[0] for _, lo, _ in predictions)
    spread = highest - lowest + 1.0
    a = model.variables(1, lowest - 1.0, highest + 1.0)[0]
    pick = model.variables(k, 0, 1, integer=True)
    y = model.variables(n, 0, 1, integer=True)
    r = model.variables(n, 0, 1, integer=True)
    scale = instance.f.sum() + instance.phat.sum()  # costs measured in this unit keep the big-M rows well scaled
    cost_low, cost_high = -1.0, instance.phat.sum() / scale
    z = model.variables(1, cost_low, cost_high)[0]
    width = model.width
    unit = lambda index, value=1.0: sp.csr_matrix(([value], ([0], [index])), shape=(1, width))  # noqa: E731
    model.constrain(sp.csr_matrix((np.ones(k), (np.zeros(k), pick)), shape=(1, width)), 1.0, 1.0)
    big = cost_high - cost_low
    for j, (pred, _, _) in enumerate(predictions):
        row = pred.widened(width)
        model.constrain(unit(a) - row, pred.constant[0], np.inf)  # a >= pred_j
        model.constrain(unit(a) - row + unit(pick[j], spread), -np.inf, pred.constant[0] + spread)
        degradation = instance.phat * scenarios[j]
        cost = sp.csr_matrix((np.concatenate([degradation - instance.f, -degradation]) / scale,
                              (np.zeros(2 * n), np.concatenate([y, r]))), shape=(1, width))
        model.constrain(unit(z) - cost - unit(pick[j], big), -big, np.inf)  # z >= cost_j - big (1 - s_j)
    for i in range(n):
        model.constrain(unit(y[i]) - unit(x[i]), -np.inf, 0.0)
        model.constrain(unit(r[i]) - unit(y[i]), -np.inf, 0.0)
    model.constrain(sp.csr_matrix((np.concatenate([instance.c, instance.t]), (np.zeros(2 * n), np.concatenate([y, r]))),
                                  shape=(1, width)), -np.inf, instance.capacity)
    objective = np.zeros(width)
    objective[x], objective[z] = (instance.f - instance.pbar) / scale, 1.0
    result = _milp(objective, **model.scipy_form(), options={"mip_rel_gap": 1e-6, "time_limit": time_limit})
    if result.x is None:
        raise RunError(f"ML-CCG main problem failed: {result.message}")
    values = np.array([float((p.widened(width) @ result.x)[0] + p.constant[0]) for p, _, _ in predictions])
    return MainSolution(np.round(result.x[x]), values, int(np.argmax(np.round(result.x[pick]))))


def project_budget(v: torch.Tensor, gamma: float) -> torch.Tensor:
    """Euclidean projection onto {0 <= xi <= 1, sum xi <= gamma} (bisection on the shift)."""
    clipped = v.clamp(0, 1)
    if float(clipped.sum()) <= gamma:
        return clipped
    low, high = 0.0, float(v.max())
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if float((v - middle).clamp(0, 1).sum()) > gamma else (low, middle)
    return (v - high).clamp(0, 1)


def adversary_pga(instance: Knapsack, net: SetEncoder, scaler: FeatureScaler, x: np.ndarray, *, starts: int = 5,
                  steps: int = 100, lr: float = 0.05, seed: int = 0) -> tuple[np.ndarray, float]:
    """max over the uncertainty set of the predicted second-stage value at x."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        p_x = net.encode_x(_tensor(scaler.features(instance, x)))
    rest = torch.from_numpy(scaler.features(instance, np.zeros(instance.n))[:, 1:].astype(np.float32))
    best, best_value = None, -np.inf
    for _ in range(starts):
        xi = project_budget(torch.rand(instance.n, generator=generator), instance.gamma).requires_grad_(True)
        optimiser = torch.optim.Adam([xi], lr=lr)
        for _ in range(steps):
            optimiser.zero_grad()
            value = net.psi(torch.cat([p_x, net.encode_xi(torch.cat([xi.unsqueeze(1), rest], 1).unsqueeze(0))], 1))
            (-value.sum()).backward()
            optimiser.step()
            with torch.no_grad():
                xi.copy_(project_budget(xi, instance.gamma))
        with torch.no_grad():
            value = float(net.psi(torch.cat([p_x, net.encode_xi(torch.cat([xi.unsqueeze(1), rest], 1)
                                                                 .unsqueeze(0))], 1)))
        if value > best_value:
            best, best_value = xi.detach().double().numpy(), value
    return best, best_value


@dataclass
class MLCCGResult:
    x: np.ndarray
    objective: float  # true robust profit of x (exact worst case)
    iterations: int
    scenarios: int
    seconds: float
    stop: str


def ml_ccg(instance: Knapsack, net: SetEncoder, scaler: FeatureScaler, *, tol: float = 1e-4,
           max_scenarios: int = 20, time_limit: float = 600.0, seed: int = 0) -> MLCCGResult:
    start = time.perf_counter()
    scenarios = [np.zeros(instance.n)]
    stop, iterations = "max scenarios", 0
    while True:
        iterations += 1
        main = main_problem(instance, net, scaler, scenarios, max(time_limit - (time.perf_counter() - start), 1.0))
        xi, predicted = adversary_pga(instance, net, scaler, main.x, seed=seed + iterations)
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
    exact = first_stage_cost(instance, main.x) + worst_case(instance, main.x).value
    return MLCCGResult(main.x, -exact, iterations, len(scenarios), solve_seconds, stop)
