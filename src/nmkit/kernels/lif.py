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
from nmkit.kernels.dispatch import backend, triton_available

if triton_available():
    import triton
    import triton.language as tl


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
    if not triton_available():
        raise RuntimeError("triton is not installed")
    return _apply("triton", x, tau, threshold, alpha, potential)


def _apply(kind: str, x, tau, threshold, alpha, potential):
    potential = x.new_zeros(x.shape[0], x.shape[2]) if potential is None else potential.detach()
    return _LIF.apply(kind, x, potential, tau, threshold, alpha)


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, x, potential, tau, threshold, alpha):
        forward = {"triton": _forward_triton, "cpu": _forward_cpu, "ref": _forward_ref}[kind]
        spikes, charged, final = forward(x.contiguous(), potential, tau, threshold)
        ctx.kind, ctx.constants = kind, (tau, threshold, alpha)
        ctx.save_for_backward(charged)
        ctx.mark_non_differentiable(final)
        return spikes, final

    @staticmethod
    def backward(ctx, grad_spikes, _):
        backward = {"triton": _backward_triton, "cpu": _backward_cpu, "ref": _backward_ref}[ctx.kind]
        (charged,) = ctx.saved_tensors
        return None, backward(grad_spikes.contiguous(), charged, *ctx.constants), None, None, None, None


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


def _grid(x: torch.Tensor, block: int = 256) -> tuple[tuple[int], int]:
    return (triton.cdiv(x.shape[0] * x.shape[2], block),), block


def _forward_triton(x, potential, tau, threshold):
    x32 = x.float()
    spikes, charged, final = torch.empty_like(x32), torch.empty_like(x32), potential.float().contiguous().clone()
    grid, block = _grid(x)
    _lif_forward_kernel[grid](x32, spikes, charged, final, x.shape[0] * x.shape[2], x.shape[1], x.shape[2],
                              1.0 / tau, threshold, BLOCK=block)
    return spikes.to(x.dtype), charged.to(x.dtype), final.to(x.dtype)


def _backward_triton(grad_spikes, charged, tau, threshold, alpha):
    grad32, charged32 = grad_spikes.float(), charged.float()
    grad_x = torch.empty_like(charged32)
    grid, block = _grid(charged)
    _lif_backward_kernel[grid](grad32, charged32, grad_x, charged.shape[0] * charged.shape[2], charged.shape[1],
                               charged.shape[2], 1.0 / tau, threshold, alpha * math.pi / 2, alpha / 2, BLOCK=block)
    return grad_x.to(charged.dtype)


if triton_available():

    @triton.jit
    def _lif_forward_kernel(x_ptr, spikes_ptr, charged_ptr, potential_ptr, neurons, steps, channels, inv_tau,
                            threshold, BLOCK: tl.constexpr):
        """One lane per (batch row, channel) neuron, looping over time; potential_ptr holds V in and out."""
        neuron = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = neuron < neurons
        row, channel = neuron // channels, neuron % channels
        v = tl.load(potential_ptr + neuron, mask=inside, other=0.0)
        for t in range(steps):
            at = (row * steps + t) * channels + channel
            h = v + (tl.load(x_ptr + at, mask=inside, other=0.0) - v) * inv_tau
            fired = tl.where(h >= threshold, 1.0, 0.0)
            tl.store(charged_ptr + at, h, mask=inside)
            tl.store(spikes_ptr + at, fired, mask=inside)
            v = h * (1.0 - fired)
        tl.store(potential_ptr + neuron, v, mask=inside)

    @triton.jit
    def _lif_backward_kernel(grad_ptr, charged_ptr, grad_x_ptr, neurons, steps, channels, inv_tau, threshold, slope,
                             half_alpha, BLOCK: tl.constexpr):
        """The reverse sweep of the module docstring (slope = pi/2 alpha, half_alpha = alpha/2)."""
        neuron = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = neuron < neurons
        row, channel = neuron // channels, neuron % channels
        grad_v = tl.zeros([BLOCK], dtype=tl.float32)
        for i in range(steps):
            at = (row * steps + steps - 1 - i) * channels + channel
            h = tl.load(charged_ptr + at, mask=inside, other=0.0)
            fired = tl.where(h >= threshold, 1.0, 0.0)
            x = slope * (h - threshold)
            grad_h = grad_v * (1.0 - fired) + (tl.load(grad_ptr + at, mask=inside, other=0.0) - grad_v * h) * (
                half_alpha / (1.0 + x * x))
            tl.store(grad_x_ptr + at, grad_h * inv_tau, mask=inside)
            grad_v = grad_h * (1.0 - inv_tau)
