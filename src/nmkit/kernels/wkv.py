"""RWKV-4's WKV operator (SpikeGPT's SRWKV time mixing): a Triton kernel (forward and backward) and its PyTorch
reference, both behind one autograd function.

With decay w > 0 (w = exp(time_decay)), bonus u (time_first), keys k and values v [B, T, C]:
    wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{-(t-1-i) w + k_i} + e^{u + k_t})
computed as a recurrence over t on the running numerator P and denominator Q, stored scaled as p = P e^{-o},
q = Q e^{-o} with a shared exponent o, so no exponential overflows (the stable form of RWKV-4's CUDA kernel):
    e = max(o, u + k_t);  a = e^{o - e};  b = e^{u + k_t - e};  y_t = (a p + b v_t) / (a q + b)
    e' = max(o - w, k_t); a' = e^{o - w - e'}; b' = e^{k_t - e'}; p, q, o = a' p + b' v_t, a' q + b', e'

Backward, derived here for this form: with gp_t = e^{o_t} dL/dP_t and gq_t likewise (the adjoints of the state
entering step t, scaled the same way, so they stay bounded), z = 1 / (a q + b), and gp_T = gq_T = 0,
    gk_t = gy z b (v_t - y_t) + b' (gp_{t+1} v_t + gq_{t+1});   gv_t = gy z b + b' gp_{t+1}
    gu  += gy z b (v_t - y_t);                                    gw  -= a' (gp_{t+1} p_t + gq_{t+1} q_t)
    gp_t = gy z a + a' gp_{t+1};                                  gq_t = -gy z a y_t + a' gq_{t+1}
The forward stores the state entering every step, so the backward is one reverse sweep without recomputing the
forward. The state (p, q, o) carries across calls (chunked or RNN-mode evaluation equals one long call); it is
a constant to autograd: gradients flow to w, u, k and v.
"""

from __future__ import annotations

import torch

from nmkit.kernels import snn_cpu
from nmkit.kernels.dispatch import backend

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
NO_EXPONENT = -1e38  # o before the first token: e^{o} = 0


def initial_state(batch: int, channels: int, dtype: torch.dtype = torch.float32,
                  device: torch.device | str = "cpu") -> State:
    zeros = torch.zeros(batch, channels, dtype=dtype, device=device)
    return zeros, zeros.clone(), torch.full_like(zeros, NO_EXPONENT)


def wkv(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
        state: State | None = None) -> tuple[torch.Tensor, State]:
    """w, u: [C]; k, v: [B, T, C]. Returns wkv [B, T, C] and the state after the last step (Triton on CUDA, the
    compiled loop on CPU)."""
    return _apply(backend(k, v), w, u, k, v, state)


def wkv_ref(w, u, k, v, state: State | None = None) -> tuple[torch.Tensor, State]:
    return _apply("ref", w, u, k, v, state)


def wkv_cpu(w, u, k, v, state: State | None = None) -> tuple[torch.Tensor, State]:
    """The numba loops of ``snn_cpu`` (CPU tensors)."""
    return _apply("cpu", w, u, k, v, state)


def wkv_triton(w, u, k, v, state: State | None = None) -> tuple[torch.Tensor, State]:
    """The Triton kernels (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1); fp32 inside."""
    return _apply("triton", w, u, k, v, state)


def _apply(kind: str, w, u, k, v, state: State | None) -> tuple[torch.Tensor, State]:
    batch, _, channels = k.shape
    p, q, o = state if state is not None else initial_state(batch, channels, k.dtype, k.device)
    y, p, q, o = _WKV.apply(kind, w, u, k, v, p.detach(), q.detach(), o.detach())
    return y, (p, q, o)


class _WKV(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, w, u, k, v, p, q, o):
        forward = _passes(kind)[0]
        y, entering, final = forward(w, u, k.contiguous(), v.contiguous(), p, q, o)
        ctx.kind = kind
        ctx.save_for_backward(w, u, k, v, y, *entering)
        ctx.mark_non_differentiable(*final)
        return y, *final

    @staticmethod
    def backward(ctx, gy, *_):
        backward = _passes(ctx.kind)[1]
        w, u, k, v, y, p, q, o = ctx.saved_tensors
        gw, gu, gk, gv = backward(w, u, k.contiguous(), v.contiguous(), y, gy.contiguous(), p, q, o)
        return None, gw.sum(0).to(w.dtype), gu.sum(0).to(u.dtype), gk, gv, None, None, None


def _passes(kind: str) -> tuple:
    """(forward, backward) of one backend; the Triton pair is imported only when CUDA tensors meet it."""
    if kind == "triton":
        from nmkit.kernels.gpu import wkv as gpu

        return gpu.forward, gpu.backward
    return {"cpu": (_forward_cpu, _backward_cpu), "ref": (_forward_ref, _backward_ref)}[kind]


def _forward_ref(w, u, k, v, p, q, o):
    entering = [torch.empty_like(k) for _ in range(3)]
    y = torch.empty_like(k)
    for t in range(k.shape[1]):
        kt, vt = k[:, t], v[:, t]
        for stored, value in zip(entering, (p, q, o), strict=True):
            stored[:, t] = value
        top = torch.maximum(o, u + kt)
        a, b = torch.exp(o - top), torch.exp(u + kt - top)
        y[:, t] = (a * p + b * vt) / (a * q + b)
        top = torch.maximum(o - w, kt)
        a, b = torch.exp(o - w - top), torch.exp(kt - top)
        p, q, o = a * p + b * vt, a * q + b, top
    return y, entering, (p, q, o)


def _backward_ref(w, u, k, v, y, gy, p_in, q_in, o_in):
    gw, gu = k.new_zeros(k.shape[0], k.shape[2]), k.new_zeros(k.shape[0], k.shape[2])
    gp, gq = torch.zeros_like(gw), torch.zeros_like(gw)
    gk, gv = torch.empty_like(k), torch.empty_like(v)
    for t in reversed(range(k.shape[1])):
        kt, vt, yt, p, q, o = k[:, t], v[:, t], y[:, t], p_in[:, t], q_in[:, t], o_in[:, t]
        top = torch.maximum(o, u + kt)
        a, b = torch.exp(o - top), torch.exp(u + kt - top)
        gyz = gy[:, t] / (a * q + b)
        top = torch.maximum(o - w, kt)
        decay, fresh = torch.exp(o - w - top), torch.exp(kt - top)
        gu += gyz * b * (vt - yt)
        gk[:, t] = gyz * b * (vt - yt) + fresh * (gp * vt + gq)
        gv[:, t] = gyz * b + fresh * gp
        gw -= decay * (gp * p + gq * q)
        gp, gq = gyz * a + decay * gp, -gyz * a * yt + decay * gq
    return gw, gu, gk, gv


def _forward_cpu(w, u, k, v, p, q, o):
    y, entering, final = torch.empty_like(k), [torch.empty_like(k) for _ in range(3)], [torch.empty_like(p)
                                                                                        for _ in range(3)]
    snn_cpu.wkv_forward(*snn_cpu.arrays(w.to(k.dtype), u.to(k.dtype), k, v, p, q, o, y, *entering, *final))
    return y, entering, tuple(final)


def _backward_cpu(w, u, k, v, y, gy, p, q, o):
    gk, gv = torch.empty_like(k), torch.empty_like(v)
    gw, gu = k.new_empty(k.shape[0], k.shape[2]), k.new_empty(k.shape[0], k.shape[2])
    snn_cpu.wkv_backward(*snn_cpu.arrays(w.to(k.dtype), u.to(k.dtype), k, v, y, gy, p, q, o, gw, gu, gk, gv))
    return gw, gu, gk, gv
