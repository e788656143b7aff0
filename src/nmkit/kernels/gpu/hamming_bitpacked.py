"""The Triton kernel of ``kernels.hamming_bitpacked`` (imported only when CUDA tensors meet it)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from nmkit.kernels.hamming_bitpacked import WORD, pack_bitplanes


def mismatch_counts_triton(text: torch.Tensor, pattern: torch.Tensor, wildcard: int = -1,
                           block: int = 128) -> torch.Tensor:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    n, m = text.numel(), pattern.numel()
    count = n - m + 1
    top = max(int(text.max()), int(pattern.max()), 1)
    bits = top.bit_length()
    text_words = (n + WORD - 1) // WORD + 1  # one spare word for the funnel shift's upper load
    pattern_words = (m + WORD - 1) // WORD
    text_planes = pack_bitplanes(text, bits, text_words)
    pattern_planes = pack_bitplanes(pattern, bits, pattern_words)
    text_care = pack_bitplanes((text != wildcard).to(torch.int64), 1, text_words)
    pattern_care = pack_bitplanes((pattern != wildcard).to(torch.int64), 1, pattern_words)  # 0 past m
    out = torch.empty(count, dtype=torch.int32, device=text.device)
    grid = ((count + block - 1) // block,)
    _hamming_bitpacked_kernel[grid](text_planes, text_care, pattern_planes, pattern_care, out, count, text_words,
                    pattern_words, BITS=bits, BLOCK=block)
    return out


@triton.jit
def _funnel(ptr, q, r):
    lo = tl.load(ptr + q).to(tl.uint32)
    hi = tl.load(ptr + q + 1).to(tl.uint32)
    return (lo >> r) | ((hi << 1) << (31 - r))  # two shifts keep r = 0 well defined

@triton.jit
def _popcount(x):
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    return (((x + (x >> 4)) & 0x0F0F0F0F) * 0x01010101) >> 24

@triton.jit
def _hamming_bitpacked_kernel(t_ptr, t_care_ptr, p_ptr, p_care_ptr, out_ptr, count, t_words, p_words,
                              BITS: tl.constexpr, BLOCK: tl.constexpr):
    align = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = align < count
    start = tl.where(valid, align, 0)  # out-of-range lanes read word 0 and are never stored
    total = tl.zeros([BLOCK], dtype=tl.uint32)
    for w in range(0, p_words):
        pos = start + w * 32
        q = pos >> 5
        r = (pos & 31).to(tl.uint32)
        diff = tl.zeros([BLOCK], dtype=tl.uint32)
        for b in tl.static_range(BITS):
            diff |= _funnel(t_ptr + b * t_words, q, r) ^ tl.load(p_ptr + b * p_words + w).to(tl.uint32)
        care = _funnel(t_care_ptr, q, r) & tl.load(p_care_ptr + w).to(tl.uint32)
        total += _popcount(diff & care)
    tl.store(out_ptr + align, total.to(tl.int32), mask=valid)
