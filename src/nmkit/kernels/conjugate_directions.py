"""DCDM's A-orthogonalisation, q <- q - sum_j (q . A p_j) / (p_j . A p_j) p_j, fused for the GPU path.

On CUDA tensors two Triton launches replace 2k separate BLAS-1 calls: one pass reads q once and accumulates every
dot q . A p_j (block partial sums, atomically added), a second pass writes q minus the whole combination of the
p_j. NumPy arrays and CPU tensors take the reference loop.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import triton_available, use_triton

if triton_available():
    import triton
    import triton.language as tl


def a_orthogonalize(q, previous: list[tuple]) -> object:
    """q A-orthogonalised against ``previous`` = [(p_j, A p_j, p_j . A p_j), ...]."""
    if previous and isinstance(q, torch.Tensor) and use_triton(q):
        return a_orthogonalize_triton(q, previous)
    return a_orthogonalize_ref(q, previous)


def a_orthogonalize_ref(q, previous: list[tuple]):
    for p, ap, pap in previous:
        q = q - (q @ ap) / pap * p
    return q


def a_orthogonalize_triton(q: torch.Tensor, previous: list[tuple], block: int = 1024) -> torch.Tensor:
    """The fused path (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1). Coefficients come from one pass
    over the unmodified q; that equals the sequential loop because the p_j are mutually A-orthogonal."""
    if not triton_available():
        raise RuntimeError("triton is not installed")
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


if triton_available():

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
