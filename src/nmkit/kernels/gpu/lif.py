"""The Triton forward and backward kernels of ``kernels.lif`` (imported only when CUDA tensors meet them)."""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


def _grid(x: torch.Tensor, block: int = 256) -> tuple[tuple[int], int]:
    return (triton.cdiv(x.shape[0] * x.shape[2], block),), block


def forward(x, potential, theta, tau, firing):
    x32 = x.float()
    spikes, charged, final = torch.empty_like(x32), torch.empty_like(x32), potential.float().contiguous().clone()
    grid, block = _grid(x)
    _lif_forward_kernel[grid](x32, theta.float().contiguous(), spikes, charged, final, x.shape[0] * x.shape[2],
                              x.shape[1], x.shape[2], 1.0 / tau, LEVELS=firing.levels, SIGNED=firing.signed,
                              SOFT=firing.soft_reset, BLOCK=block)
    return spikes.to(x.dtype), charged.to(x.dtype), final.to(x.dtype)


def backward(grad_spikes, charged, theta, tau, alpha, firing):
    grad32, charged32 = grad_spikes.float(), charged.float()
    grad_x, grad_theta = torch.empty_like(charged32), torch.empty_like(charged32[:, 0])
    grid, block = _grid(charged)
    _lif_backward_kernel[grid](grad32, charged32, theta.float().contiguous(), grad_x, grad_theta,
                               charged.shape[0] * charged.shape[2], charged.shape[1], charged.shape[2], 1.0 / tau,
                               alpha * math.pi / 2, alpha / 2, LEVELS=firing.levels, SIGNED=firing.signed,
                               SOFT=firing.soft_reset, BLOCK=block)
    return grad_x.to(charged.dtype), grad_theta.sum(0).to(charged.dtype)


@triton.jit
def _spikes(h, theta, LEVELS: tl.constexpr, SIGNED: tl.constexpr):
    count = tl.zeros_like(h)
    for k in tl.static_range(1, LEVELS + 1):
        count += tl.where(h >= k * theta, 1.0, 0.0)
        if SIGNED:
            count -= tl.where(-h >= k * theta, 1.0, 0.0)
    return count


@triton.jit
def _surrogate(x, slope, half_alpha):
    z = slope * x
    return half_alpha / (1.0 + z * z)


@triton.jit
def _lif_forward_kernel(x_ptr, theta_ptr, spikes_ptr, charged_ptr, potential_ptr, neurons, steps, channels, inv_tau,
                        LEVELS: tl.constexpr, SIGNED: tl.constexpr, SOFT: tl.constexpr, BLOCK: tl.constexpr):
    """One lane per (batch row, channel) neuron, looping over time; potential_ptr holds V in and out."""
    neuron = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = neuron < neurons
    row, channel = neuron // channels, neuron % channels
    theta = tl.load(theta_ptr + channel, mask=inside, other=1.0)
    v = tl.load(potential_ptr + neuron, mask=inside, other=0.0)
    for t in range(steps):
        at = (row * steps + t) * channels + channel
        h = v + (tl.load(x_ptr + at, mask=inside, other=0.0) - v) * inv_tau
        s = _spikes(h, theta, LEVELS, SIGNED)
        tl.store(charged_ptr + at, h, mask=inside)
        tl.store(spikes_ptr + at, s, mask=inside)
        if SOFT:
            v = h - theta * s
        else:
            v = tl.where(s != 0.0, 0.0, h)
    tl.store(potential_ptr + neuron, v, mask=inside)


@triton.jit
def _lif_backward_kernel(grad_ptr, charged_ptr, theta_ptr, grad_x_ptr, grad_theta_ptr, neurons, steps, channels,
                         inv_tau, slope, half_alpha, LEVELS: tl.constexpr, SIGNED: tl.constexpr,
                         SOFT: tl.constexpr, BLOCK: tl.constexpr):
    """The reverse sweep of ``kernels.lif``'s docstring (slope = pi/2 alpha, half_alpha = alpha/2); the threshold's
    gradient is summed over time per (row, channel) lane."""
    neuron = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = neuron < neurons
    row, channel = neuron // channels, neuron % channels
    theta = tl.load(theta_ptr + channel, mask=inside, other=1.0)
    grad_v = tl.zeros([BLOCK], dtype=tl.float32)
    grad_theta = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(steps):
        at = (row * steps + steps - 1 - i) * channels + channel
        h = tl.load(charged_ptr + at, mask=inside, other=0.0)
        g = tl.load(grad_ptr + at, mask=inside, other=0.0)
        ds_dh = tl.zeros_like(h)
        ds_dtheta = tl.zeros_like(h)
        for k in tl.static_range(1, LEVELS + 1):
            up = _surrogate(h - k * theta, slope, half_alpha)
            down = tl.zeros_like(h)
            if SIGNED:
                down = _surrogate(-h - k * theta, slope, half_alpha)
            ds_dh += up + down
            ds_dtheta += k * (down - up)
        if SOFT:
            grad_h = grad_v + (g - theta * grad_v) * ds_dh
            grad_theta += (g - theta * grad_v) * ds_dtheta - grad_v * _spikes(h, theta, LEVELS, SIGNED)
        else:
            up = _surrogate(h - theta, slope, half_alpha)
            down = tl.zeros_like(h)
            if SIGNED:
                down = _surrogate(-h - theta, slope, half_alpha)
            fired = tl.where(_spikes(h, theta, LEVELS, SIGNED) != 0.0, 1.0, 0.0)
            grad_h = grad_v * (1.0 - fired) + g * ds_dh - grad_v * h * (up - down)
            grad_theta += g * ds_dtheta + grad_v * h * (up + down)
        tl.store(grad_x_ptr + at, grad_h * inv_tau, mask=inside)
        grad_v = grad_h * (1.0 - inv_tau)
    tl.store(grad_theta_ptr + neuron, grad_theta, mask=inside)
