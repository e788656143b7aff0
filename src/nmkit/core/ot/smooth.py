"""Smoothed (semi-)dual objectives of regularised OT, batched, with their gradients and plans.

Notation (Liu, Puigcerver and Blondel, ICLR 2023, Sec. 3): sources a in the simplex (rows, m),
targets b (columns, n), cost C, plan columns t_j. Omega(t) = gamma/2 ||t||^2 + indicator(||t||_0 <= k);
k = m is quadratic regularisation (Blondel et al. 2018).

* dual:      max_{alpha, beta} <alpha, a> + <beta, b> - sum_j Omega*(alpha + beta_j - c_j),
             Omega*(s) = 1/(2 gamma) sum of the k largest [s]_+^2, grad = [s]_+ / gamma on those k;
* semi-dual: max_alpha <alpha, a> - sum_j b_j max_Omega_j(alpha - c_j), whose argmax is the top-k
             sparse simplex projection y_j = P_k((alpha - c_j) / (gamma b_j)) and t_j = b_j y_j.

Everything runs on "column-major" tensors: ``cost_t`` is C transposed, [batch, n, m], so a plan
column is a contiguous row and the top-k runs along the last dimension. A plan is returned sparsely
as (values, indices) [batch, n, k]: values[b, j, r] is the mass from source indices[b, j, r] to j.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmkit.core.ot import semidual_cpu
from nmkit.kernels.sparse_simplex import topk_sparse_simplex_mass


@dataclass
class SparsePlan:
    values: torch.Tensor  # [batch, n, k]
    indices: torch.Tensor  # [batch, n, k] source index of each value

    def row_sums(self, m: int) -> torch.Tensor:
        out = torch.zeros(*self.values.shape[:-2], m, dtype=self.values.dtype, device=self.values.device)
        return out.scatter_add_(-1, self.indices.flatten(-2), self.values.flatten(-2))


def semi_dual(alpha: torch.Tensor, a: torch.Tensor, b: torch.Tensor, cost_t: torch.Tensor, gamma: float,
              k: int) -> tuple[torch.Tensor, torch.Tensor, SparsePlan]:
    """Semi-dual objective [batch], its gradient in alpha [batch, m] and the plan at alpha.

    On CPU with small k the fused one-pass loop of ``semidual_cpu`` does the work; elsewhere tensors.
    """
    if cost_t.device.type == "cpu" and k <= semidual_cpu.MAX_K:
        objective, grad, values, indices = semidual_cpu.semi_dual(
            *(t.numpy() for t in (alpha.contiguous(), a, b, cost_t)), gamma, k)
        as_t = torch.from_numpy
        return as_t(objective), as_t(grad), SparsePlan(as_t(values), as_t(indices))
    return semi_dual_tensors(alpha, a, b, cost_t, gamma, k)


def semi_dual_tensors(alpha: torch.Tensor, a: torch.Tensor, b: torch.Tensor, cost_t: torch.Tensor, gamma: float,
                      k: int) -> tuple[torch.Tensor, torch.Tensor, SparsePlan]:
    """The tensor formulation (any device; the Triton projection on CUDA)."""
    x = alpha.unsqueeze(-2) - cost_t  # [batch, n, m]
    y, indices, mass = topk_sparse_simplex_mass(x, gamma * b, k, b)
    chosen = torch.gather(x, -1, indices)
    max_omega = (chosen * y).sum(-1) - 0.5 * gamma * b * (y * y).sum(-1)
    objective = (alpha * a).sum(-1) - (b * max_omega).sum(-1)
    return objective, a - mass, SparsePlan(b.unsqueeze(-1) * y, indices)


def dual(alpha: torch.Tensor, beta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, cost_t: torch.Tensor,
         gamma: float, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, SparsePlan]:
    """Dual objective [batch], gradients in alpha [batch, m] and beta [batch, n], and the plan."""
    x = alpha.unsqueeze(-2) + beta.unsqueeze(-1) - cost_t  # [batch, n, m]
    top, indices = torch.topk(x, k, dim=-1, sorted=False)
    positive = torch.clamp(top, min=0)
    objective = (alpha * a).sum(-1) + (beta * b).sum(-1) - (positive * positive).sum((-1, -2)) / (2 * gamma)
    plan = SparsePlan(positive / gamma, indices)
    grad_alpha = a - plan.row_sums(alpha.shape[-1])
    grad_beta = b - plan.values.sum(-1)
    return objective, grad_alpha, grad_beta, plan
