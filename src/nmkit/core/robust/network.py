"""Neur2RO's set-encoder value network (Dumouchelle et al., ICLR 2024, Sec. 4; ``ro/models/set_encoder.py``).

Per item i the x branch sees [x_i, c_i, pbar_i, phat_i, f_i, t_i, C] and the xi branch the same with xi_i:
    e_x = sum_i phi_x(features_i(x)),  p_x = rho_x(e_x);   e_xi, p_xi likewise;   value = psi([p_x, p_xi])
phi is a bias-free one-hidden-layer ReLU MLP (so a sum over items stays exact), rho and psi one-hidden-layer ReLU
MLPs. With binary x, phi's input is affine in x_i, so e_x = e_x(0) + sum_i x_i (phi_i(1) - phi_i(0)): the main
problem embeds no ReLU for the items.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nmkit.core.robust.instances import Knapsack

FEATURES = 7


def _mlp(inputs: int, hidden: int, outputs: int, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, outputs, bias=bias))


class SetEncoder(nn.Module):
    def __init__(self, embed: tuple[int, int] = (32, 16), post: tuple[int, int] = (64, 8), value: int = 8) -> None:
        super().__init__()
        self.phi_x, self.phi_xi = _mlp(FEATURES, *embed, bias=False), _mlp(FEATURES, *embed, bias=False)
        self.rho_x, self.rho_xi = _mlp(embed[1], *post), _mlp(embed[1], *post)
        self.psi = _mlp(2 * post[1], value, 1)

    def encode_x(self, features: torch.Tensor) -> torch.Tensor:
        """[B, n, 7] x-branch features -> p_x [B, post]."""
        return self.rho_x(self.phi_x(features).sum(1))

    def encode_xi(self, features: torch.Tensor) -> torch.Tensor:
        return self.rho_xi(self.phi_xi(features).sum(1))

    def forward(self, x_features: torch.Tensor, xi_features: torch.Tensor) -> torch.Tensor:
        return self.psi(torch.cat([self.encode_x(x_features), self.encode_xi(xi_features)], 1)).squeeze(1)


class FeatureScaler:
    """Min-max scaling of the 7 per-item features, fitted on training instances; decisions stay in [0, 1]."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low, self.high = low, high

    @classmethod
    def fit(cls, instances: list[Knapsack]) -> FeatureScaler:
        rows = np.concatenate([_raw(inst, np.zeros(inst.n)) for inst in instances])
        low, high = rows.min(0), rows.max(0)
        low[0], high[0] = 0.0, 1.0
        return cls(low, high)

    def features(self, instance: Knapsack, decision: np.ndarray) -> np.ndarray:
        """[n, 7] scaled features with ``decision`` (x or xi) in column 0."""
        return (_raw(instance, decision) - self.low) / np.maximum(self.high - self.low, 1e-12)


def _raw(instance: Knapsack, decision: np.ndarray) -> np.ndarray:
    n = instance.n
    return np.column_stack([decision, instance.c, instance.pbar, instance.phat, instance.f, instance.t,
                            np.full(n, instance.capacity)])
