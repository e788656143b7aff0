"""Neur2RO's data and training (Sec. 4.2; ``ro/dm/kp.py``): second-stage values Q(x, xi) of sampled first-stage
decisions and scenarios, solved exactly, and a set-encoder regression on them.

Samples: x_i ~ Bernoulli(1 - p) with p ~ U(0, 1) per decision; xi = u * b / sum(u) with u ~ U(0, 1)^n and
b ~ U(0, Gamma), clipped to [0, 1]. Labels are Q / sum(f) (a per-instance scale that keeps them near [-1, 1]).
Training: MSE, Adam, mini-batches; the epoch with the best validation MAE is kept. Collection runs in worker
processes when asked (the solves are independent).
"""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nmkit.core.robust.instances import Knapsack
from nmkit.core.robust.knapsack import second_stage
from nmkit.core.robust.network import FeatureScaler, SetEncoder


@dataclass
class Samples:
    x_features: np.ndarray  # [S, n, 7]
    xi_features: np.ndarray
    labels: np.ndarray  # [S]


def sample_scenario(instance: Knapsack, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(instance.n)
    return np.minimum(u * rng.uniform(0, instance.gamma) / u.sum(), 1.0)


def collect(instances: list[Knapsack], scaler: FeatureScaler, decisions: int, scenarios: int,
            rng: np.random.Generator, advance: Callable[[int], None] | None = None,
            workers: int = 1) -> list[Samples]:
    """Samples for every instance (one group each, since instances differ in n). Each instance draws from its own
    seed, so the data is the same for any number of worker processes."""
    seeds = rng.integers(0, 2**63 - 1, len(instances))
    jobs = [(instance, scaler, decisions, scenarios, int(seed)) for instance, seed in zip(instances, seeds,
                                                                                          strict=True)]
    if workers <= 1:
        results = []
        for job in jobs:
            results.append(_collect_one(*job))
            if advance is not None:
                advance(1)
        return results
    context = multiprocessing.get_context("spawn")  # no fork after torch has started its threads
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_collect_one, *job) for job in jobs]
        for _ in concurrent.futures.as_completed(futures):
            if advance is not None:
                advance(1)
        return [future.result() for future in futures]


def _collect_one(instance: Knapsack, scaler: FeatureScaler, decisions: int, scenarios: int, seed: int) -> Samples:
    rng = np.random.default_rng(seed)
    xs, xis, labels = [], [], []
    for _ in range(decisions):
        x = (rng.random(instance.n) < 1 - rng.random()).astype(float)
        for _ in range(scenarios):
            xi = sample_scenario(instance, rng)
            xs.append(scaler.features(instance, x))
            xis.append(scaler.features(instance, xi))
            labels.append(second_stage(instance, x, xi)[0] / instance.f.sum())
    return Samples(np.array(xs, np.float32), np.array(xis, np.float32), np.array(labels, np.float32))


def fit(samples: list[Samples], *, epochs: int, lr: float, batch_size: int, seed: int,
        validation: float = 0.2) -> tuple[SetEncoder, dict]:
    """Train on a random 80/20 split of the samples (within each instance); keep the best validation MAE."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = SetEncoder()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    train, valid = [], []
    for group in samples:
        tensors = [torch.from_numpy(a) for a in (group.x_features, group.xi_features, group.labels)]
        order = torch.randperm(len(group.labels), generator=generator)
        cut = max(1, int(len(order) * validation))
        valid.append([t[order[:cut]] for t in tensors])
        train.append([t[order[cut:]] for t in tensors])
    best, best_mae = copy.deepcopy(net.state_dict()), np.inf
    history = []
    for _ in range(epochs):
        net.train()
        for x, xi, y in train:
            for batch in torch.randperm(len(y), generator=generator).split(batch_size):
                optimiser.zero_grad()
                torch.nn.functional.mse_loss(net(x[batch], xi[batch]), y[batch]).backward()
                optimiser.step()
        net.eval()
        with torch.no_grad():
            errors = torch.cat([(net(x, xi) - y).abs() for x, xi, y in valid])
        mae = float(errors.mean())
        history.append(mae)
        if mae < best_mae:
            best, best_mae = copy.deepcopy(net.state_dict()), mae
    net.load_state_dict(best)
    label_spread = float(torch.cat([y for _, _, y in valid]).std())
    return net.eval(), {"validation_mae": best_mae, "label_std": label_spread, "mae_per_epoch": history}
