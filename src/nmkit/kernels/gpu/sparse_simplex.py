"""The Triton kernel of ``kernels.sparse_simplex`` (imported only when CUDA tensors meet it)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


def topk_sparse_simplex_triton(x: torch.Tensor, scale: torch.Tensor, k: int, weight: torch.Tensor | None = None):
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1); with ``weight``
    also return the accumulated mass (see ``topk_sparse_simplex_mass``)."""
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
