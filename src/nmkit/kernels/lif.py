"""The multi-step leaky integrate-and-fire neuron of SpikeGPT (SpikingJelly's MultiStepLIFNode: tau 2,
decay_input, V_th 1, hard reset to 0, reset not detached) with the ATan surrogate gradient, and the spike codes the
SNN literature uses for language models: a fused Triton kernel (forward and backward), a compiled CPU loop and the
PyTorch reference behind one autograd function.

Per step t along the token axis, with a per-channel threshold theta (a constant, or learned):
    H_t = V_{t-1} + (X_t - V_{t-1}) / tau
    S_t = sum_{k=1..n} Theta(H_t - k theta)  [- sum_k Theta(-H_t - k theta) when signed]
    hard reset: V_t = H_t (1 - F_t), F_t = [S_t != 0];   soft reset: V_t = H_t - theta S_t
``Firing(levels=n, signed, soft_reset)``: n = 1 unsigned with a hard reset is SpikeGPT's binary spike; n = 1 signed
is the ternary spike {-1, 0, 1} (Guo et al., AAAI 2024); n > 1 with a soft reset is the integer (multi-level)
spike of I-LIF / SpikeLM. Theta's gradient is replaced by the ATan surrogate
g(x) = arctan(pi/2 alpha x) / pi + 1/2,  g'(x) = alpha / (2 (1 + (pi/2 alpha x)^2))  (g'(0) = 1 at alpha = 2).

Backward (reset not detached), gV the adjoint of V_t (0 after the last step), gS_t the spikes' upstream gradient:
    S'_H = sum_k g'(H - k theta) + g'(-H - k theta) [signed]
    S'_theta = sum_k k (-g'(H - k theta) + g'(-H - k theta) [signed])
    hard: F'_H = g'(H - theta) - g'(-H - theta) [signed], F'_theta = -g'(H - theta) - g'(-H - theta) [signed];
          gH = gV (1 - F) + gS S'_H - gV H F'_H;   g_theta += gS S'_theta - gV H F'_theta
    soft: gH = gV + (gS - theta gV) S'_H;          g_theta += (gS - theta gV) S'_theta - gV S
    gX_t = gH / tau;  gV <- gH (1 - 1/tau)
(binary: gH = gV (1 - S) + (gS - gV H) g'(H - theta), SpikeGPT's). The forward stores H, so the backward is one
reverse sweep. The potential carries across calls (chunked or RNN-mode evaluation equals one long call) and is a
constant to autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nmkit.kernels import snn_cpu
from nmkit.kernels.dispatch import backend


@dataclass(frozen=True)
class Firing:
    """How a charged neuron turns into spikes: up to ``levels`` spikes per step, negative ones too when
    ``signed``, and a soft reset (subtract theta per spike) instead of SpikeGPT's hard reset to 0."""

    levels: int = 1
    signed: bool = False
    soft_reset: bool = False


BINARY = Firing()


def surrogate_gradient(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / (2 * (1 + (math.pi / 2 * alpha * x) ** 2))


class ATanSpike(torch.autograd.Function):
    """Heaviside forward (x >= 0 fires), ATan surrogate backward: SpikeGPT's binary embedding."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * surrogate_gradient(x, ctx.alpha), None


def spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    return ATanSpike.apply(x, alpha)


def lif(x: torch.Tensor, tau: float = 2.0, threshold: float | torch.Tensor = 1.0, alpha: float = 2.0,
        potential: torch.Tensor | None = None, firing: Firing = BINARY) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes of a LIF neuron per channel driven by x [B, T, C] (time = token axis), starting from ``potential``
    [B, C] (default 0); returns the spikes and the potential after the last step. ``threshold`` is a number or a
    per-channel tensor [C] (which gets a gradient when it requires one)."""
    return _apply(backend(x), x, tau, threshold, alpha, potential, firing)


def lif_ref(x, tau=2.0, threshold=1.0, alpha=2.0, potential=None, firing=BINARY):
    return _apply("ref", x, tau, threshold, alpha, potential, firing)


def lif_cpu(x, tau=2.0, threshold=1.0, alpha=2.0, potential=None, firing=BINARY):
    """The numba loops of ``snn_cpu`` (CPU tensors)."""
    return _apply("cpu", x, tau, threshold, alpha, potential, firing)


def lif_triton(x, tau=2.0, threshold=1.0, alpha=2.0, potential=None, firing=BINARY):
    """The fused Triton kernels (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1); fp32 inside."""
    return _apply("triton", x, tau, threshold, alpha, potential, firing)


def _apply(kind: str, x, tau, threshold, alpha, potential, firing):
    potential = x.new_zeros(x.shape[0], x.shape[2]) if potential is None else potential.detach()
    if not isinstance(threshold, torch.Tensor):
        threshold = x.new_full((x.shape[2],), float(threshold))
    return _LIF.apply(kind, x, potential, threshold, tau, alpha, firing)


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, x, potential, threshold, tau, alpha, firing):
        forward = _passes(kind)[0]
        theta = threshold.detach().to(x.dtype).contiguous()
        spikes, charged, final = forward(x.contiguous(), potential, theta, tau, firing)
        ctx.kind, ctx.constants = kind, (tau, alpha, firing)
        ctx.save_for_backward(charged, theta)
        ctx.mark_non_differentiable(final)
        return spikes, final

    @staticmethod
    def backward(ctx, grad_spikes, _):
        backward = _passes(ctx.kind)[1]
        charged, theta = ctx.saved_tensors
        grad_x, grad_theta = backward(grad_spikes.contiguous(), charged, theta, *ctx.constants)
        return None, grad_x, None, grad_theta if ctx.needs_input_grad[3] else None, None, None, None


def _passes(kind: str) -> tuple:
    """(forward, backward) of one backend; the Triton pair is imported only when CUDA tensors meet it."""
    if kind == "triton":
        from nmkit.kernels.gpu import lif as gpu

        return gpu.forward, gpu.backward
    return {"cpu": (_forward_cpu, _backward_cpu), "ref": (_forward_ref, _backward_ref)}[kind]


def _count(h: torch.Tensor, theta: torch.Tensor, firing: Firing) -> torch.Tensor:
    """S for charges h (the module docstring's sum of Heavisides)."""
    levels = torch.arange(1, firing.levels + 1, dtype=h.dtype, device=h.device)[:, None, None]
    spikes = (h >= levels * theta).sum(0).to(h.dtype)
    return spikes - (-h >= levels * theta).sum(0).to(h.dtype) if firing.signed else spikes


def _forward_ref(x, potential, theta, tau, firing):
    charged, spikes = torch.empty_like(x), torch.empty_like(x)
    for t in range(x.shape[1]):
        charged[:, t] = potential + (x[:, t] - potential) / tau
        spikes[:, t] = _count(charged[:, t], theta, firing)
        if firing.soft_reset:
            potential = charged[:, t] - theta * spikes[:, t]
        else:
            potential = charged[:, t] * (spikes[:, t] == 0).to(x.dtype)
    return spikes, charged, potential


def _backward_ref(grad_spikes, charged, theta, tau, alpha, firing):
    grad_x, grad_theta = torch.empty_like(charged), torch.zeros_like(charged[:, 0])
    grad_v = charged.new_zeros(charged.shape[0], charged.shape[2])
    sign = 1.0 if firing.signed else 0.0
    for t in reversed(range(charged.shape[1])):
        h, g = charged[:, t], grad_spikes[:, t]
        up = [surrogate_gradient(h - k * theta, alpha) for k in range(1, firing.levels + 1)]
        down = [sign * surrogate_gradient(-h - k * theta, alpha) for k in range(1, firing.levels + 1)]
        ds_dh = sum(a + b for a, b in zip(up, down, strict=True))
        ds_dtheta = sum(k * (b - a) for k, (a, b) in enumerate(zip(up, down, strict=True), 1))
        s = _count(h, theta, firing)
        if firing.soft_reset:
            grad_h = grad_v + (g - theta * grad_v) * ds_dh
            grad_theta += (g - theta * grad_v) * ds_dtheta - grad_v * s
        else:
            fired = (s != 0).to(h.dtype)
            grad_h = grad_v * (1 - fired) + g * ds_dh - grad_v * h * (up[0] - down[0])
            grad_theta += g * ds_dtheta + grad_v * h * (up[0] + down[0])
        grad_x[:, t] = grad_h / tau
        grad_v = grad_h * (1 - 1 / tau)
    return grad_x, grad_theta.sum(0)


def _forward_cpu(x, potential, theta, tau, firing):
    spikes, charged, final = torch.empty_like(x), torch.empty_like(x), torch.empty_like(potential)
    x_, potential_, theta_, spikes_, charged_, final_ = snn_cpu.arrays(x, potential.to(x.dtype), theta, spikes,
                                                                       charged, final)
    snn_cpu.lif_forward(x_, potential_, theta_, float(tau), firing.levels, firing.signed, firing.soft_reset,
                        spikes_, charged_, final_)
    return spikes, charged, final


def _backward_cpu(grad_spikes, charged, theta, tau, alpha, firing):
    grad_x, grad_theta = torch.empty_like(charged), torch.empty_like(charged[:, 0])
    grad_, charged_, theta_, grad_x_, grad_theta_ = snn_cpu.arrays(grad_spikes, charged, theta, grad_x, grad_theta)
    snn_cpu.lif_backward(grad_, charged_, theta_, float(tau), float(alpha), firing.levels, firing.signed,
                         firing.soft_reset, grad_x_, grad_theta_)
    return grad_x, grad_theta.sum(0)
