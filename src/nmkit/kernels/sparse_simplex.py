"""Top-k sparse simplex projection, row-wise (one row = one column of a transport plan).

For each row x (length m) and scale s > 0: keep the k largest entries of x / s and project them
onto the probability simplex (Kyrillidis et al. 2013; Liu, Puigcerver and Blondel, ICLR 2023,
Eq. for the semi-dual max_Omega). Returned sparsely as ``values`` [..., k] (non-negative, each row
summing to 1) and ``indices`` [..., k]: a transport column never needs its m - k zeros.

The Triton kernel gives each program one row held in registers, extracts the k largest entries by
k rounds of max + mask (k is small: 1-8 in practice), and solves the simplex threshold in registers.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import use_triton

TRITON_MAX_K = 16  # beyond this the reference's sort-based top-k is the better tool


def topk_sparse_simplex_mass(x: torch.Tensor, scale: torch.Tensor, k: int, weight: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The projection plus the mass it sends to every source: for x [..., n, m] and weights [..., n],
    mass[..., i] = sum over rows j of weight_j * y_j[i] (a transport plan's row sums, the semi-dual's
    gradient term). On CUDA the Triton kernel accumulates it with atomic adds in the same pass."""
    if k <= TRITON_MAX_K and use_triton(x, scale, weight):
        from nmkit.kernels.gpu.sparse_simplex import topk_sparse_simplex_triton

        return topk_sparse_simplex_triton(x, scale, k, weight)
    return topk_sparse_simplex_mass_ref(x, scale, k, weight)


def topk_sparse_simplex_mass_ref(x: torch.Tensor, scale: torch.Tensor, k: int, weight: torch.Tensor
                                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    values, indices = topk_sparse_simplex_ref(x, scale, k)
    mass = torch.zeros(*x.shape[:-2], x.shape[-1], dtype=x.dtype, device=x.device)
    mass.scatter_add_(-1, indices.flatten(-2), (weight.unsqueeze(-1) * values).flatten(-2))
    return values, indices, mass


def topk_sparse_simplex_ref(x: torch.Tensor, scale: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch reference: torch.topk, then the sort-and-threshold simplex projection of the k values."""
    top, indices = torch.topk(x, k, dim=-1, sorted=True)
    return simplex_of_sorted(top / scale.unsqueeze(-1)), indices


def simplex_of_sorted(u: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the simplex of rows already sorted in decreasing order."""
    k = u.shape[-1]
    cumulative = torch.cumsum(u, dim=-1) - 1.0
    ranks = torch.arange(1, k + 1, device=u.device, dtype=u.dtype)
    support = (u - cumulative / ranks > 0).sum(dim=-1, keepdim=True).clamp(min=1)
    theta = torch.gather(cumulative, -1, support - 1) / support.to(u.dtype)
    return torch.clamp(u - theta, min=0)
