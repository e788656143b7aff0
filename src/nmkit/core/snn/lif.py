"""The multi-step leaky integrate-and-fire neuron of SpikeGPT (SpikingJelly's MultiStepLIFNode: tau 2,
decay_input, V_th 1, hard reset to 0, reset not detached) with the ATan surrogate gradient, PyTorch reference.

Per step t along the token axis: H_t = V_{t-1} + (X_t - V_{t-1}) / tau;  S_t = Theta(H_t - V_th);
V_t = H_t (1 - S_t). Theta's gradient is replaced by the ATan surrogate
g(x) = arctan(pi/2 alpha x) / pi + 1/2,  g'(x) = alpha / (2 (1 + (pi/2 alpha x)^2))  (g'(0) = 1 at alpha = 2).
"""

from __future__ import annotations

import math

import torch


class ATanSpike(torch.autograd.Function):
    """Heaviside forward (x >= 0 fires), ATan surrogate backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.alpha / (2 * (1 + (math.pi / 2 * ctx.alpha * x) ** 2)), None


def spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    return ATanSpike.apply(x, alpha)


def lif_reference(x: torch.Tensor, tau: float = 2.0, threshold: float = 1.0, alpha: float = 2.0,
                  potential: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes {0, 1} of a LIF neuron per channel driven by x [B, T, C] (time = token axis), starting from
    ``potential`` [B, C] (default 0); returns the spikes and the potential after the last step."""
    potential = torch.zeros_like(x[:, 0]) if potential is None else potential
    spikes = []
    for t in range(x.shape[1]):
        charged = potential + (x[:, t] - potential) / tau
        fired = spike(charged - threshold, alpha)
        spikes.append(fired)
        potential = charged * (1 - fired)
    return torch.stack(spikes, 1), potential
