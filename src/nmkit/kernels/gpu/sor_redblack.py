"""The Triton half-sweep of ``kernels.sor_redblack`` (imported only when CUDA tensors meet it)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


def redblack_half_sweep_triton(u: torch.Tensor, f: torch.Tensor, diag: float, off: float, omega: float,
                               colour: int) -> None:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    width = u.shape[1]
    side = u.shape[0] - 2
    _redblack_kernel[(side,)](u, f, width, float(diag), float(off), float(omega), colour,
                              BLOCK=triton.next_power_of_2(width))


@triton.jit
def _redblack_kernel(u_ptr, f_ptr, width, diag, off, omega, colour, BLOCK: tl.constexpr):
    i = tl.program_id(0) + 1  # interior row
    j = tl.arange(0, BLOCK)
    inside = (j >= 1) & (j < width - 1)
    mine = inside & ((i + j) % 2 == colour)
    row = u_ptr + i * width
    centre = tl.load(row + j, mask=inside, other=0.0)
    neighbours = tl.load(row - width + j, mask=inside, other=0.0) + tl.load(row + width + j, mask=inside,
                                                                            other=0.0)
    neighbours += tl.load(row + j - 1, mask=inside, other=0.0) + tl.load(row + j + 1, mask=inside, other=0.0)
    rhs = tl.load(f_ptr + i * width + j, mask=inside, other=0.0)
    relaxed = (1 - omega) * centre + omega * (rhs + off * neighbours) / diag
    tl.store(row + j, relaxed, mask=mine)
