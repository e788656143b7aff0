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

from nmkit.kernels.dispatch import triton_available, use_triton

if triton_available():
    import triton
    import triton.language as tl

TRITON_MAX_K = 16  # beyond this the reference's sort-based top-k is the better tool


def topk_sparse_simplex_mass(x: torch.Tensor, scale: torch.Tensor, k: int, weight: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The projection plus the mass it sends to every source: for x [..., n, m] and weights [..., n],
    mass[..., i] = sum over rows j of weight_j * y_j[i] (a transport plan's row sums, the semi-dual's
    gradient term). On CUDA the Triton kernel accumulates it with atomic adds in the same pass."""
    if k <= TRITON_MAX_K and use_triton(x, scale, weight):
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


def topk_sparse_simplex_triton(x: torch.Tensor, scale: torch.Tensor, k: int, weight: torch.Tensor | None = None):
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1); with ``weight``
    also return the accumulated mass (see ``topk_sparse_simplex_mass``)."""
    if not triton_available():
        raise RuntimeError("triton is not installed")
    shape = x.shape
    rows = x.reshape(-1, shape[-1]).contiguous()
    scales = scale.reshape(-1).contiguous().to(rows.dtype)
    count, m = rows.shape
    per_group = shape[-2] if len(shape) >= 2 else count
    values = torch.empty(count, k, dtype=rows.dtype, device=rows.device)
    indices = torch.empty(count, k, dtype=torch.int64, device=rows.device)
    mass = torch.zeros(count // per_group, m, dtype=rows.dtype, device=rows.device)
    weights = scales if weight is None else weight.reshape(-1).contiguous().to(rows.dtype)
    _topk_sparse_simplex_kernel[(count,)](rows, scales, values, indices, weights, mass, m, per_group, K=k,
                                          K_POW2=triton.next_power_of_2(k), BLOCK=triton.next_power_of_2(m),
                                          ACCUMULATE=weight is not None)
    values, indices = values.reshape(*shape[:-1], k), indices.reshape(*shape[:-1], k)
    if weight is None:
        return values, indices
    return values, indices, mass.reshape(*shape[:-2], m)


if triton_available():

    @triton.jit
    def _topk_sparse_simplex_kernel(x_ptr, scale_ptr, values_ptr, indices_ptr, weight_ptr, mass_ptr, m, per_group,
                                    K: tl.constexpr, K_POW2: tl.constexpr, BLOCK: tl.constexpr,
                                    ACCUMULATE: tl.constexpr):
        row = tl.program_id(0)
        offsets = tl.arange(0, BLOCK)
        inside = offsets < m
        x = tl.load(x_ptr + row * m + offsets, mask=inside, other=float("-inf"))  # fp32 or fp64, kept as given
        scale = tl.load(scale_ptr + row)
        slots = tl.arange(0, K_POW2)  # slots >= K are padding
        used = slots < K
        top = tl.zeros([K_POW2], dtype=x.dtype)
        where = tl.zeros([K_POW2], dtype=tl.int64)
        for r in tl.static_range(K):  # r-th largest: max, then mask it out
            best = tl.max(x, axis=0)
            at = tl.argmax(x, axis=0)
            top = tl.where(slots == r, best / scale, top)
            where = tl.where(slots == r, at.to(tl.int64), where)
            x = tl.where(offsets == at, float("-inf"), x)
        cumulative = tl.cumsum(top, axis=0) - 1.0
        ranks = (slots + 1).to(x.dtype)
        support = tl.sum(((top - cumulative / ranks > 0) & used).to(tl.int32), axis=0)
        support = tl.maximum(support, 1)
        theta = tl.sum(tl.where(slots == support - 1, cumulative, 0.0), axis=0) / support.to(x.dtype)
        y = tl.maximum(top - theta, 0.0)
        tl.store(values_ptr + row * K + slots, y, mask=used)
        tl.store(indices_ptr + row * K + slots, where, mask=used)
        if ACCUMULATE:  # the plan's row sums: mass[group, source] += weight_row * y
            weight = tl.load(weight_ptr + row)
            tl.atomic_add(mass_ptr + (row // per_group) * m + where, weight * y, mask=used)
