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


def topk_sparse_simplex(x: torch.Tensor, scale: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the projection of each row of ``x / scale[..., None]``."""
    if k <= TRITON_MAX_K and use_triton(x, scale):
        return topk_sparse_simplex_triton(x, scale, k)
    return topk_sparse_simplex_ref(x, scale, k)


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


def topk_sparse_simplex_triton(x: torch.Tensor, scale: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    if not triton_available():
        raise RuntimeError("triton is not installed")
    shape = x.shape
    rows = x.reshape(-1, shape[-1]).contiguous()
    scales = scale.reshape(-1).contiguous().to(rows.dtype)
    count, m = rows.shape
    values = torch.empty(count, k, dtype=rows.dtype, device=rows.device)
    indices = torch.empty(count, k, dtype=torch.int64, device=rows.device)
    block = triton.next_power_of_2(m)
    _topk_sparse_simplex_kernel[(count,)](rows, scales, values, indices, m, K=k, K_POW2=triton.next_power_of_2(k),
                                          BLOCK=block)
    return values.reshape(*shape[:-1], k), indices.reshape(*shape[:-1], k)


if triton_available():

    @triton.jit
    def _topk_sparse_simplex_kernel(x_ptr, scale_ptr, values_ptr, indices_ptr, m, K: tl.constexpr,
                                    K_POW2: tl.constexpr, BLOCK: tl.constexpr):
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
        tl.store(values_ptr + row * K + slots, tl.maximum(top - theta, 0.0), mask=used)
        tl.store(indices_ptr + row * K + slots, where, mask=used)
