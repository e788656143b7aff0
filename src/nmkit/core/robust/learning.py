"""Neur2RO's data and training (Sec. 4.2; ``ro/dm/kp.py``): second-stage values of sampled first-stage decisions
and scenarios, solved exactly, and a set-encoder regression on them.

Decisions and scenarios come from the problem's samplers. Optionally every scenario that the exact worst-case
search of a sampled decision visits (its row generation solves the second stage at each anyway) is added as a
sample too, since sampled scenarios rarely look like the adversary's worst cases. Labels are the second-stage cost
over the problem's per-instance scale; the network is trained on them standardised (mean 0, std 1 on the training
split) and the standardisation is then folded into its last layer. Features are min-max scaled on the training split.
Training: MSE, Adam, mini-batches; the epoch with the best validation MAE is kept. Collection runs one task per
instance on the run's executor (the solves are independent).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nmkit.core import io
from nmkit.core.executor import ExecutorSpec, TaskLog, run_tasks
from nmkit.core.robust import solvers
from nmkit.core.robust.network import Dimensions, FeatureScaler, ValueModel, build_network
from nmkit.core.robust.problem import RobustProblem


@dataclass
class Samples:
    """One instance's samples (instances differ in item count, so they are not stacked)."""

    x_raw: np.ndarray  # [S, items, x_features], unscaled
    xi_raw: np.ndarray  # [S, items, xi_features]
    labels: np.ndarray  # [S]

    def to_json(self) -> dict:
        """Exact and compact: each array as base64 of its .npy bytes (the task log of a resumable run)."""
        return {name: io.array_to_text(getattr(self, name)) for name in ("x_raw", "xi_raw", "labels")}

    @classmethod
    def from_json(cls, data: dict) -> Samples:
        return cls(*(io.array_from_text(data[name]) for name in ("x_raw", "xi_raw", "labels")))


def collect(problem: RobustProblem, family: list[Any], decisions: int, scenarios: int, rng: np.random.Generator,
            advance: Callable[[int], None] | None = None, executor: ExecutorSpec | None = None,
            worst_cases: bool = False, log: TaskLog | None = None, resume: bool = False) -> list[Samples]:
    """``decisions`` x ``scenarios`` second-stage solves per instance, plus (``worst_cases``) every scenario the
    exact worst-case search visits for each sampled decision: one task per instance on ``executor`` (default: here,
    one at a time). Each instance draws from its own seed, so the data is the same wherever the tasks run."""
    seeds = rng.integers(0, 2**63 - 1, len(family))
    tasks = [(solvers.backend(), problem, instance, decisions, scenarios, int(seed), worst_cases)
             for instance, seed in zip(family, seeds, strict=True)]
    return run_tasks(_collect_task, tasks, executor=executor or ExecutorSpec("local", workers=1),
                     names=[f"instance {i}" for i in range(len(family))], advance=advance, log=log, resume=resume)


def _collect_task(backend: str, *arguments) -> Samples:
    solvers.use(backend)
    return _collect_one(*arguments)


def _collect_one(problem: RobustProblem, instance: Any, decisions: int, scenarios: int, seed: int,
                 worst_cases: bool) -> Samples:
    rng = np.random.default_rng(seed)
    xs, xis, labels = [], [], []
    scale = problem.scale(instance)
    for _ in range(decisions):
        x = problem.sample_x(instance, rng)
        solved = [(xi, problem.second_stage(instance, x, xi))
                  for xi in (problem.sample_xi(instance, rng) for _ in range(scenarios))]
        if worst_cases:
            solved += problem.worst_case(instance, x).visited
        for xi, value in solved:
            xs.append(problem.raw_x(instance, x))
            xis.append(problem.raw_xi(instance, xi))
            labels.append(value / scale)
    return Samples(np.array(xs), np.array(xis), np.array(labels, np.float32))


def fit(problem: RobustProblem, samples: list[Samples], *, epochs: int, lr: float, batch_size: int, seed: int,
        dims: dict | None = None, validation: float = 0.2) -> tuple[ValueModel, dict]:
    """Train on a random 80/20 split of the samples (within each instance); keep the best validation MAE."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    splits = []
    for group in samples:
        order = torch.randperm(len(group.labels), generator=generator).numpy()
        cut = max(1, int(len(order) * validation))
        splits.append((order[cut:], order[:cut]))
    x_scaler = FeatureScaler.fit(np.concatenate([g.x_raw[t].reshape(-1, g.x_raw.shape[-1])
                                                 for g, (t, _) in zip(samples, splits, strict=True)]),
                                 keep_first=True)
    xi_scaler = FeatureScaler.fit(np.concatenate([g.xi_raw[t].reshape(-1, g.xi_raw.shape[-1])
                                                  for g, (t, _) in zip(samples, splits, strict=True)]))
    train_labels = np.concatenate([g.labels[t] for g, (t, _) in zip(samples, splits, strict=True)])
    shift, spread = float(train_labels.mean()), float(max(train_labels.std(), 1e-6))
    train, valid = [], []
    for group, (train_rows, valid_rows) in zip(samples, splits, strict=True):
        tensors = [torch.from_numpy(x_scaler(group.x_raw)), torch.from_numpy(xi_scaler(group.xi_raw)),
                   torch.from_numpy((group.labels - shift) / spread)]
        train.append([t[train_rows] for t in tensors])
        valid.append([t[valid_rows] for t in tensors])
    net = build_network(Dimensions(problem.x_features, problem.xi_features, **(dims or {})))
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_mae, history = copy.deepcopy(net.state_dict()), np.inf, []
    for _ in range(epochs):
        net.train()
        for group in torch.randperm(len(train), generator=generator).tolist():
            x, xi, y = train[group]
            for batch in torch.randperm(len(y), generator=generator).split(batch_size):
                optimiser.zero_grad()
                torch.nn.functional.mse_loss(net(x[batch], xi[batch]), y[batch]).backward()
                optimiser.step()
        net.eval()
        with torch.no_grad():
            mae = float(torch.cat([(net(x, xi) - y).abs() for x, xi, y in valid]).mean())
        history.append(mae)
        if mae < best_mae:
            best, best_mae = copy.deepcopy(net.state_dict()), mae
    net.load_state_dict(best)
    with torch.no_grad():  # fold the label standardisation into the last layer: the net predicts labels
        net.psi[2].weight.mul_(spread)
        net.psi[2].bias.mul_(spread).add_(shift)
    label_spread = float(torch.cat([y for _, _, y in valid]).std()) * spread
    info = {"validation_mae": best_mae * spread, "label_std": label_spread,
            "mae_per_epoch": [m * spread for m in history]}
    return ValueModel(problem, net, x_scaler, xi_scaler), info
