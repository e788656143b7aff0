"""Bit-packed text-to-pattern mismatch counting (the GPU path of ``nmkit hamming``).

Symbols are codes < 2**bits, stored as ``bits`` bit-planes packed 32 positions per word,
least-significant bit first. One program handles BLOCK consecutive alignments; for each pattern
word it funnel-shifts the text words into place, ORs the XOR of every plane (a position differs if
any bit differs), masks out wildcard positions with the "care" planes and counts bits with a SWAR
popcount. Work is about n * ceil(m/32) * (bits + 1) word operations.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import use_triton

WORD = 32


def mismatch_counts(text: torch.Tensor, pattern: torch.Tensor, wildcard: int = -1) -> torch.Tensor:
    """HD[i] = #{j : T[i+j] != P[j], neither is ``wildcard``} for i = 0..n-m (int32)."""
    if use_triton(text, pattern):
        from nmkit.kernels.gpu.hamming_bitpacked import mismatch_counts_triton

        return mismatch_counts_triton(text, pattern, wildcard)
    return mismatch_counts_ref(text, pattern, wildcard)


def mismatch_counts_ref(text: torch.Tensor, pattern: torch.Tensor, wildcard: int = -1) -> torch.Tensor:
    """PyTorch reference: m vectorised compare-and-add passes."""
    n, m = text.numel(), pattern.numel()
    count = n - m + 1
    out = torch.zeros(count, dtype=torch.int32, device=text.device)
    text_care = text != wildcard
    for j, symbol in enumerate(pattern.tolist()):
        if symbol != wildcard:
            window = text[j : j + count]
            out += ((window != symbol) & text_care[j : j + count]).to(torch.int32)
    return out


def pack_bitplanes(codes: torch.Tensor, bits: int, words: int) -> torch.Tensor:
    """[bits, words] int32: bit b of code k lands in word k // 32 of plane b, at bit k % 32."""
    padded = torch.zeros(words * WORD, dtype=torch.int64, device=codes.device)
    padded[: codes.numel()] = codes.to(torch.int64)
    shifts = torch.arange(bits, device=codes.device).view(bits, 1)
    planes = ((padded.view(1, -1) >> shifts) & 1).view(bits, words, WORD)
    weights = torch.ones(1, dtype=torch.int64, device=codes.device) << torch.arange(WORD, device=codes.device)
    packed = (planes * weights).sum(-1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
