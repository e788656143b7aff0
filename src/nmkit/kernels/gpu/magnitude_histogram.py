"""The Triton kernel of ``kernels.magnitude_histogram`` (imported only when CUDA tensors meet it)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from nmkit.kernels.magnitude_histogram import BINS


def radix_histogram_triton(scores: torch.Tensor, high_bin: int | None = None, absolute: bool = False,
                           block: int = 1024) -> torch.Tensor:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    flat = scores.detach().reshape(-1).to(torch.float32).contiguous()
    counts = torch.zeros(BINS, dtype=torch.int32, device=flat.device)
    n = flat.numel()
    if n:
        _radix_histogram_kernel[(triton.cdiv(n, block),)](flat, counts, n, -1 if high_bin is None else high_bin,
                                                          ABSOLUTE=absolute, BLOCK=block)
    return counts.to(torch.int64)


@triton.jit
def _radix_histogram_kernel(scores_ptr, counts_ptr, n, high_bin, ABSOLUTE: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    bits = tl.load(scores_ptr + offsets, mask=inside, other=0.0).to(tl.int32, bitcast=True)
    if ABSOLUTE:
        bits = bits & 0x7FFFFFFF
    high = bits >> 16
    if high_bin < 0:
        tl.atomic_add(counts_ptr + high, 1, mask=inside)
    else:
        tl.atomic_add(counts_ptr + (bits & 0xFFFF), 1, mask=inside & (high == high_bin))
