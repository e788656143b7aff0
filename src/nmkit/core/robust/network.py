"""Neur2RO's set-encoder value network (Dumouchelle et al., ICLR 2024, Sec. 4; ``ro/models/set_encoder.py``).

Per item i the x branch sees the problem's x features (x_i first, then item data) and the xi branch its xi features:
    e_x = sum_i phi_x(features_i(x)),  p_x = rho_x(e_x);   e_xi, p_xi likewise;   value = psi([p_x, p_xi])
phi is a bias-free one-hidden-layer ReLU MLP (so a sum over items stays exact), rho and psi one-hidden-layer ReLU
MLPs. With binary x, phi's input is affine in x_i, so e_x = e_x(0) + sum_i x_i (phi_i(1) - phi_i(0)): the main
problem embeds no ReLU for the items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nmkit.core.robust.problem import RobustProblem


@dataclass(frozen=True)
class Dimensions:
    """Hidden and output widths: phi (per item), rho (after the sum), psi (the value net's hidden layer). The
    paper's runs used embed (32, 16), post (64, 8), value 8; the MILP adversary embeds items x embed[0] ReLUs.
    ``joint``: one per-item encoder over [x features, xi features] (``JointSetEncoder``) instead of two."""

    x_features: int
    xi_features: int
    embed: tuple[int, int] = (32, 16)
    post: tuple[int, int] = (64, 8)
    value: int = 8
    joint: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _mlp(inputs: int, hidden: int, outputs: int, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, outputs, bias=bias))


class SetEncoder(nn.Module):
    def __init__(self, dims: Dimensions) -> None:
        super().__init__()
        self.dims = dims
        self.phi_x, self.phi_xi = _mlp(dims.x_features, *dims.embed, bias=False), \
            _mlp(dims.xi_features, *dims.embed, bias=False)
        self.rho_x, self.rho_xi = _mlp(dims.embed[1], *dims.post), _mlp(dims.embed[1], *dims.post)
        self.psi = _mlp(2 * dims.post[1], dims.value, 1)

    def encode_x(self, features: torch.Tensor) -> torch.Tensor:
        """[B, n, x_features] -> p_x [B, post]."""
        return self.rho_x(self.phi_x(features).sum(1))

    def encode_xi(self, features: torch.Tensor) -> torch.Tensor:
        return self.rho_xi(self.phi_xi(features).sum(1))

    def value(self, p_x: torch.Tensor, p_xi: torch.Tensor) -> torch.Tensor:
        return self.psi(torch.cat([p_x, p_xi], 1)).squeeze(1)

    def forward(self, x_features: torch.Tensor, xi_features: torch.Tensor) -> torch.Tensor:
        return self.value(self.encode_x(x_features), self.encode_xi(xi_features))


class JointSetEncoder(nn.Module):
    """value = psi(sum_i phi([x features_i, xi features_i])): one encoder sees each item's decision and scenario
    together, so the value can tell whether the scenario hits the items x selected, which two separate sums cannot.
    A scenario given as one row (capital budgeting's xi) is repeated for every item. For a fixed scenario phi's
    input is affine in binary x_i, so the main problem needs ReLUs only in psi, once per scenario; for a fixed x
    an item's input follows one coordinate of a per-item xi (the adversary's piecewise-linear embedding), while a
    shared xi costs the adversary big-M ReLUs for every item."""

    def __init__(self, dims: Dimensions) -> None:
        super().__init__()
        self.dims = dims
        self.phi = _mlp(dims.x_features + dims.xi_features, *dims.embed, bias=False)
        self.psi = _mlp(dims.embed[1], dims.value, 1)

    def forward(self, x_features: torch.Tensor, xi_features: torch.Tensor) -> torch.Tensor:
        xi_features = xi_features.expand(-1, x_features.shape[1], -1)  # a shared scenario row, once per item
        return self.psi(self.phi(torch.cat([x_features, xi_features], -1)).sum(1)).squeeze(1)


def build_network(dims: Dimensions) -> SetEncoder | JointSetEncoder:
    return JointSetEncoder(dims) if dims.joint else SetEncoder(dims)


class FeatureScaler:
    """Min-max scaling of per-item features, fitted on the training data; column 0 of the x branch (x_i itself)
    stays as it is. Scaling is affine, so features stay affine in the decision."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low, self.high = low, high

    @classmethod
    def fit(cls, rows: np.ndarray, keep_first: bool = False) -> FeatureScaler:
        """``rows``: [..., features]."""
        flat = rows.reshape(-1, rows.shape[-1])
        low, high = flat.min(0), flat.max(0)
        if keep_first:
            low[0], high[0] = 0.0, 1.0
        return cls(low, high)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return ((raw - self.low) / np.maximum(self.high - self.low, 1e-12)).astype(np.float32)


class ValueModel:
    """A trained network with its feature scalers, for one problem: predicts second-stage cost / scale."""

    def __init__(self, problem: RobustProblem, net: SetEncoder | JointSetEncoder, x_scaler: FeatureScaler,
                 xi_scaler: FeatureScaler) -> None:
        self.problem, self.net, self.x_scaler, self.xi_scaler = problem, net.eval(), x_scaler, xi_scaler

    def x_features(self, instance: Any, x: np.ndarray) -> np.ndarray:
        return self.x_scaler(self.problem.raw_x(instance, x))

    def xi_features(self, instance: Any, xi: np.ndarray) -> np.ndarray:
        """Scaled; for the joint encoder a shared scenario row is repeated for every item."""
        features = self.xi_scaler(self.problem.raw_xi(instance, xi))
        if self.net.dims.joint and len(features) == 1:
            features = np.repeat(features, self.problem.size(instance), axis=0)
        return features

    def xi_affine(self, instance: Any) -> tuple[np.ndarray, np.ndarray]:
        """(F0 [items, features], J [dim, items, features]) with xi features = F0 + sum_j xi_j J_j exactly."""
        dim = self.problem.uncertainty(instance).dim
        base = self.xi_features(instance, np.zeros(dim)).astype(np.float64)
        steps = np.stack([self.xi_features(instance, unit).astype(np.float64) - base for unit in np.eye(dim)])
        return base, steps

    def predict(self, instance: Any, x: np.ndarray, xi: np.ndarray) -> float:
        with torch.no_grad():
            return float(self.net(as_batch(self.x_features(instance, x)), as_batch(self.xi_features(instance, xi))))

    def to_file(self) -> dict:
        return {"problem": self.problem.name, "dimensions": self.net.dims.to_dict(),
                "state_dict": self.net.state_dict(),
                **{f"{name}_{end}": torch.from_numpy(getattr(getattr(self, name), end).astype(np.float64))
                   for name in ("x_scaler", "xi_scaler") for end in ("low", "high")}}

    @classmethod
    def from_file(cls, saved: dict, problem: RobustProblem) -> ValueModel:
        dims = saved["dimensions"]
        net = build_network(Dimensions(**{k: tuple(v) if isinstance(v, list | tuple) else v
                                          for k, v in dims.items()}))
        net.load_state_dict(saved["state_dict"])
        scalers = [FeatureScaler(saved[f"{name}_low"].numpy(), saved[f"{name}_high"].numpy())
                   for name in ("x_scaler", "xi_scaler")]
        return cls(problem, net, *scalers)


def as_batch(features: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(features, dtype=np.float32)).unsqueeze(0)
