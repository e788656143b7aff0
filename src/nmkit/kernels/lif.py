"""The multi-step leaky integrate-and-fire neuron of SpikeGPT (SpikingJelly's MultiStepLIFNode: tau 2,
decay_input, V_th 1, hard reset to 0, reset not detached) with the ATan surrogate gradient: a fused Triton
kernel (forward and backward) and its PyTorch reference behind one autograd function.

Per step t along the token axis: H_t = V_{t-1} + (X_t - V_{t-1}) / tau;  S_t = Theta(H_t - V_th);
V_t = H_t (1 - S_t). Theta's gradient is replaced by the ATan surrogate
g(x) = arctan(pi/2 alpha x) / pi + 1/2,  g'(x) = alpha / (2 (1 + (pi/2 alpha x)^2))  (g'(0) = 1 at alpha = 2).

Backward (reset not detached, so the reset's dependence on S_t counts), with gV the adjoint of V_t (0 after the
last step): gS_t = gy_t - gV H_t;  gH_t = gV (1 - S_t) + gS_t g'(H_t - V_th);  gX_t = gH_t / tau;
gV <- gH_t (1 - 1 / tau). The forward stores H, so the backward is one reverse sweep. The potential carries across
calls (chunked or RNN-mode evaluation equals one long call) and is a constant to autograd.
"""

from __future__ import annotations

import math

import torch

from nmkit.kernels import snn_cpu
from nmkit.kernels.dispatch import backend


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


def lif(x: torch.Tensor, tau: float = 2.0, threshold: float = 1.0, alpha: float = 2.0,
        potential: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes {0, 1} of a LIF neuron per channel driven by x [B, T, C] (time = token axis), starting from
    ``potential`` [B, C] (default 0); returns the spikes and the potential after the last step."""
    return _apply(backend(x), x, tau, threshold, alpha, potential)


def lif_ref(x, tau=2.0, threshold=1.0, alpha=2.0, potential=None) -> tuple[torch.Tensor, torch.Tensor]:
    return _apply("ref", x, tau, threshold, alpha, potential)


def lif_cpu(x, tau=2.0, threshold=1.0, alpha=2.0, potential=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The numba loops of ``snn_cpu`` (CPU tensors)."""
    return _apply("cpu", x, tau, threshold, alpha, potential)


def lif_triton(x, tau=2.0, threshold=1.0, alpha=2.0, potential=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused Triton kernels (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1); fp32 inside."""
    return _apply("triton", x, tau, threshold, alpha, potential)


def _apply(kind: str, x, tau, threshold, alpha, potential):
    potential = x.new_zeros(x.shape[0], x.shape[2]) if potential is None else potential.detach()
    return _LIF.apply(kind, x, potential, tau, threshold, alpha)


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, x, potential, tau, threshold, alpha):
        forward = _passes(kind)[0]
        spikes, charged, final = forward(x.contiguous(), potential, tau, threshold)
        ctx.kind, ctx.constants = kind, (tau, threshold, alpha)
        ctx.save_for_backward(charged)
        ctx.mark_non_differentiable(final)
        return spikes, final

    @staticmethod
    def backward(ctx, grad_spikes, _):
        backward = _passes(ctx.kind)[1]
        (charged,) = ctx.saved_tensors
        return None, backward(grad_spikes.contiguous(), charged, *ctx.constants), None, None, None, None


def _passes(kind: str) -> tuple:
    """(forward, backward) of one backend; the Triton pair is imported only when CUDA tensors meet it."""
    if kind == "triton":
        from nmkit.kernels.gpu import lif as gpu

        return gpu.forward, gpu.backward
    return {"cpu": (_forward_cpu, _backward_cpu), "ref": (_forward_ref, _backward_ref)}[kind]


def _forward_ref(x, potential, tau, threshold):
    charged, spikes = torch.empty_like(x), torch.empty_like(x)
    for t in range(x.shape[1]):
        charged[:, t] = potential + (x[:, t] - potential) / tau
        spikes[:, t] = (charged[:, t] >= threshold).to(x.dtype)
        potential = charged[:, t] * (1 - spikes[:, t])
    return spikes, charged, potential


def _backward_ref(grad_spikes, charged, tau, threshold, alpha):
    grad_x = torch.empty_like(charged)
    grad_potential = charged.new_zeros(charged.shape[0], charged.shape[2])
    for t in reversed(range(charged.shape[1])):
        h = charged[:, t]
        fired = (h >= threshold).to(h.dtype)
        grad_charged = (grad_potential * (1 - fired)
                        + (grad_spikes[:, t] - grad_potential * h) * surrogate_gradient(h - threshold, alpha))
        grad_x[:, t] = grad_charged / tau
        grad_potential = grad_charged * (1 - 1 / tau)
    return grad_x


def _forward_cpu(x, potential, tau, threshold):
    spikes, charged, final = torch.empty_like(x), torch.empty_like(x), torch.empty_like(potential)
    x_, potential_, spikes_, charged_, final_ = snn_cpu.arrays(x, potential.to(x.dtype), spikes, charged, final)
    snn_cpu.lif_forward(x_, potential_, float(tau), float(threshold), spikes_, charged_, final_)
    return spikes, charged, final


def _backward_cpu(grad_spikes, charged, tau, threshold, alpha):
    grad_x = torch.empty_like(charged)
    grad_, charged_, grad_x_ = snn_cpu.arrays(grad_spikes, charged, grad_x)
    snn_cpu.lif_backward(grad_, charged_, float(tau), float(threshold), float(alpha), grad_x_)
    return grad_x
