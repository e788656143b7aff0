"""The Triton forward and backward kernels of ``kernels.lif`` (imported only when CUDA tensors meet them)."""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


def _grid(x: torch.Tensor, block: int = 256) -> tuple[tuple[int], int]:
    return (triton.cdiv(x.shape[0] * x.shape[2], block),), block


def forward(x, potential, tau, threshold):
    x32 = x.float()
    spikes, charged, final = torch.empty_like(x32), torch.empty_like(x32), potential.float().contiguous().clone()
    grid, block = _grid(x)
    _lif_forward_kernel[grid](x32, spikes, charged, final, x.shape[0] * x.shape[2], x.shape[1], x.shape[2],
                              1.0 / tau, threshold, BLOCK=block)
    return spikes.to(x.dtype), charged.to(x.dtype), final.to(x.dtype)


def backward(grad_spikes, charged, tau, threshold, alpha):
    grad32, charged32 = grad_spikes.float(), charged.float()
    grad_x = torch.empty_like(charged32)
    grid, block = _grid(charged)
    _lif_backward_kernel[grid](grad32, charged32, grad_x, charged.shape[0] * charged.shape[2], charged.shape[1],
                               charged.shape[2], 1.0 / tau, threshold, alpha * math.pi / 2, alpha / 2, BLOCK=block)
    return grad_x.to(charged.dtype)


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
