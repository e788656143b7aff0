"""16-bit radix histograms of non-negative float32 scores (the GPU path of ``nmkit prune``'s global threshold).

A non-negative float32's bit pattern, read as an integer, orders exactly like the float. So the k-th smallest
of N scores spread over many tensors is found in two passes of 65,536-bin histograms (high 16 bits, then the
low 16 bits of the elements in the chosen high bin) without concatenating or sorting anything: the extra
memory is two histograms, not a copy of the N scores. With ``absolute`` the sign bit is cleared on the fly, so
raw weights are ranked by magnitude without materialising |w|.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import triton_available, use_triton

if triton_available():
    import triton
    import triton.language as tl

BINS = 1 << 16


def radix_histogram(scores: torch.Tensor, high_bin: int | None = None, absolute: bool = False) -> torch.Tensor:
    """int64 [65536] counts of the high 16 bits of each score's float32 pattern (``high_bin`` None), or of
    the low 16 bits among the scores whose high 16 bits equal ``high_bin``; of |score| with ``absolute``."""
    if use_triton(scores):
        return radix_histogram_triton(scores, high_bin, absolute)
    return radix_histogram_ref(scores, high_bin, absolute)


def radix_histogram_ref(scores: torch.Tensor, high_bin: int | None = None, absolute: bool = False) -> torch.Tensor:
    bits = scores.detach().reshape(-1).to(torch.float32).view(torch.int32)
    if absolute:
        bits = bits & 0x7FFFFFFF
    if high_bin is None:
        return torch.bincount(bits >> 16, minlength=BINS).to(torch.int64)
    return torch.bincount(bits[(bits >> 16) == high_bin] & 0xFFFF, minlength=BINS).to(torch.int64)


def radix_histogram_triton(scores: torch.Tensor, high_bin: int | None = None, absolute: bool = False,
                           block: int = 1024) -> torch.Tensor:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    if not triton_available():
        raise RuntimeError("triton is not installed")
    flat = scores.detach().reshape(-1).to(torch.float32).contiguous()
    counts = torch.zeros(BINS, dtype=torch.int32, device=flat.device)
    n = flat.numel()
    if n:
        _radix_histogram_kernel[(triton.cdiv(n, block),)](flat, counts, n, -1 if high_bin is None else high_bin,
                                                          ABSOLUTE=absolute, BLOCK=block)
    return counts.to(torch.int64)


if triton_available():

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
