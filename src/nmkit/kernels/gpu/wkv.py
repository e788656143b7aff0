"""The Triton forward and backward kernels of ``kernels.wkv`` (imported only when CUDA tensors meet them)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


def _blocks(k: torch.Tensor) -> tuple[tuple[int, int], int]:
    batch, _, channels = k.shape
    block = min(128, triton.next_power_of_2(channels))
    return (batch, triton.cdiv(channels, block)), block


def forward(w, u, k, v, p, q, o):
    dtype = k.dtype
    k32, v32 = k.float(), v.float()
    y, entering = torch.empty_like(k32), [torch.empty_like(k32) for _ in range(3)]
    final = [s.float().contiguous().clone() for s in (p, q, o)]
    grid, block = _blocks(k)
    _wkv_forward_kernel[grid](w.float().contiguous(), u.float().contiguous(), k32, v32, y, *entering, *final,
                              k.shape[1], k.shape[2], BLOCK=block)
    return y.to(dtype), [s.to(dtype) for s in entering], tuple(s.to(dtype) for s in final)


def backward(w, u, k, v, y, gy, p, q, o):
    tensors = [t.float().contiguous() for t in (k, v, y, gy, p, q, o)]
    gk, gv = torch.empty_like(tensors[0]), torch.empty_like(tensors[0])
    gw, gu = (tensors[0].new_empty(k.shape[0], k.shape[2]) for _ in range(2))
    grid, block = _blocks(k)
    _wkv_backward_kernel[grid](w.float().contiguous(), u.float().contiguous(), *tensors, gw, gu, gk, gv,
                               k.shape[1], k.shape[2], BLOCK=block)
    return gw, gu, gk.to(k.dtype), gv.to(v.dtype)


@triton.jit
def _wkv_forward_kernel(w_ptr, u_ptr, k_ptr, v_ptr, y_ptr, p_in_ptr, q_in_ptr, o_in_ptr, p_ptr, q_ptr, o_ptr,
                        steps, channels, BLOCK: tl.constexpr):
    """One program per (batch row, block of channels), looping over time; p/q/o hold the state in and out."""
    batch = tl.program_id(0)
    c = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = c < channels
    w, u = tl.load(w_ptr + c, mask=inside, other=1.0), tl.load(u_ptr + c, mask=inside, other=0.0)
    state = batch * channels + c
    p = tl.load(p_ptr + state, mask=inside, other=0.0)
    q = tl.load(q_ptr + state, mask=inside, other=1.0)
    o = tl.load(o_ptr + state, mask=inside, other=0.0)
    for t in range(steps):
        at = (batch * steps + t) * channels + c
        kt, vt = tl.load(k_ptr + at, mask=inside, other=0.0), tl.load(v_ptr + at, mask=inside, other=0.0)
        tl.store(p_in_ptr + at, p, mask=inside)
        tl.store(q_in_ptr + at, q, mask=inside)
        tl.store(o_in_ptr + at, o, mask=inside)
        top = tl.maximum(o, u + kt)
        a, b = tl.exp(o - top), tl.exp(u + kt - top)
        tl.store(y_ptr + at, (a * p + b * vt) / (a * q + b), mask=inside)
        top = tl.maximum(o - w, kt)
        a, b = tl.exp(o - w - top), tl.exp(kt - top)
        p, q, o = a * p + b * vt, a * q + b, top
    tl.store(p_ptr + state, p, mask=inside)
    tl.store(q_ptr + state, q, mask=inside)
    tl.store(o_ptr + state, o, mask=inside)

@triton.jit
def _wkv_backward_kernel(w_ptr, u_ptr, k_ptr, v_ptr, y_ptr, gy_ptr, p_in_ptr, q_in_ptr, o_in_ptr, gw_ptr, gu_ptr,
                         gk_ptr, gv_ptr, steps, channels, BLOCK: tl.constexpr):
    """The reverse sweep of the module docstring; gw, gu per batch row (summed over rows by the caller)."""
    batch = tl.program_id(0)
    c = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = c < channels
    w, u = tl.load(w_ptr + c, mask=inside, other=1.0), tl.load(u_ptr + c, mask=inside, other=0.0)
    gw = tl.zeros([BLOCK], dtype=tl.float32)
    gu, gp, gq = tl.zeros_like(gw), tl.zeros_like(gw), tl.zeros_like(gw)
    for i in range(steps):
        at = (batch * steps + steps - 1 - i) * channels + c
        kt, vt = tl.load(k_ptr + at, mask=inside, other=0.0), tl.load(v_ptr + at, mask=inside, other=0.0)
        yt, gyt = tl.load(y_ptr + at, mask=inside, other=0.0), tl.load(gy_ptr + at, mask=inside, other=0.0)
        p, q = tl.load(p_in_ptr + at, mask=inside, other=0.0), tl.load(q_in_ptr + at, mask=inside, other=1.0)
        o = tl.load(o_in_ptr + at, mask=inside, other=0.0)
        top = tl.maximum(o, u + kt)
        a, b = tl.exp(o - top), tl.exp(u + kt - top)
        gyz = gyt / (a * q + b)
        top = tl.maximum(o - w, kt)
        decay, fresh = tl.exp(o - w - top), tl.exp(kt - top)
        gu += gyz * b * (vt - yt)
        tl.store(gk_ptr + at, gyz * b * (vt - yt) + fresh * (gp * vt + gq), mask=inside)
        tl.store(gv_ptr + at, gyz * b + fresh * gp, mask=inside)
        gw -= decay * (gp * p + gq * q)
        gp, gq = gyz * a + decay * gp, -gyz * a * yt + decay * gq
    tl.store(gw_ptr + batch * channels + c, gw, mask=inside)
    tl.store(gu_ptr + batch * channels + c, gu, mask=inside)
