"""RWKV-4's WKV operator (SpikeGPT's SRWKV time mixing), the PyTorch reference.

With decay w > 0 (w = exp(time_decay)), bonus u (time_first), keys k and values v [B, T, C]:
    wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{-(t-1-i) w + k_i} + e^{u + k_t})
computed as a recurrence over t with running numerator p, denominator q and a shared exponent o (both scaled by
e^{-o}), so no exponential overflows (the form of RWKV-4's CUDA kernel). The state (p, q, o) carries across
calls, which makes chunked (and RNN-mode, one token at a time) evaluation equal to one long call. Autograd runs
through the loop; the Triton kernel is the fast path.
"""

from __future__ import annotations

import torch

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def initial_state(batch: int, channels: int, dtype: torch.dtype = torch.float32,
                  device: torch.device | str = "cpu") -> State:
    zeros = torch.zeros(batch, channels, dtype=dtype, device=device)
    return zeros, zeros.clone(), torch.full_like(zeros, -1e38)


def wkv_reference(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                  state: State | None = None) -> tuple[torch.Tensor, State]:
    """w, u: [C]; k, v: [B, T, C]. Returns wkv [B, T, C] and the state after the last step."""
    batch, steps, channels = k.shape
    p, q, o = state if state is not None else initial_state(batch, channels, k.dtype, k.device)
    outputs = []
    for t in range(steps):
        kt, vt = k[:, t], v[:, t]
        top = torch.maximum(o, u + kt)
        a, b = torch.exp(o - top), torch.exp(u + kt - top)
        outputs.append((a * p + b * vt) / (a * q + b))
        top = torch.maximum(o - w, kt)
        a, b = torch.exp(o - w - top), torch.exp(kt - top)
        p, q, o = a * p + b * vt, a * q + b, top
    return torch.stack(outputs, 1), (p, q, o)
