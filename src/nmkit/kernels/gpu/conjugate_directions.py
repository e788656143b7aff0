"""The fused Triton kernels of ``kernels.conjugate_directions`` (imported only when CUDA tensors meet them)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


def a_orthogonalize_triton(q: torch.Tensor, previous: list[tuple], block: int = 1024) -> torch.Tensor:
    """The fused path (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1). Coefficients come from one pass
    over the unmodified q; that equals the sequential loop because the p_j are mutually A-orthogonal."""
    n, k = q.numel(), len(previous)
    directions = torch.stack([p for p, _, _ in previous]).contiguous()
    images = torch.stack([ap for _, ap, _ in previous]).contiguous()
    energies = torch.tensor([float(pap) for _, _, pap in previous], dtype=q.dtype, device=q.device)
    dots = torch.zeros(k, dtype=q.dtype, device=q.device)
    grid = (triton.cdiv(n, block),)
    k_pow2 = triton.next_power_of_2(k)
    _dots_kernel[grid](q, images, dots, n, k, K_POW2=k_pow2, BLOCK=block)
    out = torch.empty_like(q)
    _combine_kernel[grid](q, directions, dots / energies, out, n, k, K_POW2=k_pow2, BLOCK=block)
    return out


@triton.jit
def _dots_kernel(q_ptr, images_ptr, dots_ptr, n, k, K_POW2: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    q = tl.load(q_ptr + offsets, mask=inside, other=0.0)
    rows = tl.arange(0, K_POW2)
    tile = tl.load(images_ptr + rows[:, None] * n + offsets[None, :], mask=(rows[:, None] < k) & inside[None, :],
                   other=0.0)
    tl.atomic_add(dots_ptr + rows, tl.sum(tile * q[None, :], axis=1), mask=rows < k)

@triton.jit
def _combine_kernel(q_ptr, directions_ptr, coefficients_ptr, out_ptr, n, k, K_POW2: tl.constexpr,
                    BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    rows = tl.arange(0, K_POW2)
    coefficients = tl.load(coefficients_ptr + rows, mask=rows < k, other=0.0)
    tile = tl.load(directions_ptr + rows[:, None] * n + offsets[None, :],
                   mask=(rows[:, None] < k) & inside[None, :], other=0.0)
    q = tl.load(q_ptr + offsets, mask=inside, other=0.0)
    tl.store(out_ptr + offsets, q - tl.sum(tile * coefficients[:, None], axis=0), mask=inside)
