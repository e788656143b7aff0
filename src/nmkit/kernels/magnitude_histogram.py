"""16-bit radix histograms of non-negative float32 scores (the GPU path of ``nmkit prune``'s global threshold).

A non-negative float32's bit pattern, read as an integer, orders exactly like the float. So the k-th smallest
of N scores spread over many tensors is found in two passes of 65,536-bin histograms (high 16 bits, then the
low 16 bits of the elements in the chosen high bin) without concatenating or sorting anything: the extra
memory is two histograms, not a copy of the N scores. With ``absolute`` the sign bit is cleared on the fly, so
raw weights are ranked by magnitude without materialising |w|.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import use_triton

BINS = 1 << 16


def radix_histogram(scores: torch.Tensor, high_bin: int | None = None, absolute: bool = False) -> torch.Tensor:
    """int64 [65536] counts of the high 16 bits of each score's float32 pattern (``high_bin`` None), or of
    the low 16 bits among the scores whose high 16 bits equal ``high_bin``; of |score| with ``absolute``."""
    if use_triton(scores):
        from nmkit.kernels.gpu.magnitude_histogram import radix_histogram_triton

        return radix_histogram_triton(scores, high_bin, absolute)
    return radix_histogram_ref(scores, high_bin, absolute)


def radix_histogram_ref(scores: torch.Tensor, high_bin: int | None = None, absolute: bool = False) -> torch.Tensor:
    bits = scores.detach().reshape(-1).to(torch.float32).view(torch.int32)
    if absolute:
        bits = bits & 0x7FFFFFFF
    if high_bin is None:
        return torch.bincount(bits >> 16, minlength=BINS).to(torch.int64)
    return torch.bincount(bits[(bits >> 16) == high_bin] & 0xFFFF, minlength=BINS).to(torch.int64)


HALF_BINS = 1 << 15
HALF_DTYPES = (torch.float16, torch.bfloat16)


def half_histogram(scores: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """int64 [32768] counts of each non-negative float16/bfloat16 score's 15-bit magnitude pattern (of |score| with
    ``absolute``): a 16-bit float has no more distinct magnitudes, so one pass finds its k-th smallest exactly."""
    bits = scores.detach().reshape(-1).view(torch.int16)
    if absolute:
        bits = bits & 0x7FFF
    return torch.bincount(bits, minlength=HALF_BINS).to(torch.int64)
