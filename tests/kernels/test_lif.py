"""LIF neuron: dynamics on a hand-computed sequence, the ATan surrogate at known points, the hand-derived
backward against autograd through the defining loop, and the compiled CPU loops and fused Triton kernels
(interpreter) against the reference."""

import math

import pytest
import torch

from nmkit.kernels.lif import Firing, lif_cpu, lif_ref, lif_triton, spike
from tests.kernels.marks import triton_param

FIRINGS = [Firing(), Firing(signed=True), Firing(levels=3, soft_reset=True), Firing(levels=2, signed=True),
           Firing(levels=2, signed=True, soft_reset=True)]


def test_lif_on_a_hand_computed_sequence():
    x = torch.tensor([1.0, 1.0, 1.0, 3.0, 0.0, 2.0])[None, :, None]
    # H = V/2 + X/2: 0.5 (V 0.5), 0.75 (V 0.75), 0.875 (V 0.875), 1.9375 fires (V 0), 0 (V 0), 1.0 fires
    spikes, potential = lif_ref(x)
    assert spikes.flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0] and potential.item() == 0.0
    first, middle = lif_ref(x[:, :2])
    assert first.flatten().tolist() == [0.0, 0.0] and middle.item() == 0.75  # the potential carries on
    torch.testing.assert_close(lif_ref(x[:, 2:], potential=middle)[0], spikes[:, 2:])


@pytest.mark.parametrize(("x", "expected"), [(0.0, 1.0), (1.0, 1 / (1 + math.pi**2)), (-0.5, 1 / (1 + math.pi**2 / 4))])
def test_the_atan_surrogate_gradient_at_known_points(x, expected):
    point = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    spike(point).backward()
    assert point.grad.item() == pytest.approx(expected)
    assert spike(torch.tensor(x)).item() == float(x >= 0)


def test_ternary_and_integer_spikes_on_hand_computed_sequences():
    x = torch.tensor([-3.0, 1.0, 5.0, 9.0])[None, :, None]
    # ternary, hard reset: H -1.5 fires -1 (V 0), 0.5 (V 0.5), 2.75 fires 1 (V 0), 4.5 fires 1
    assert lif_ref(x, firing=Firing(signed=True))[0].flatten().tolist() == [-1.0, 0.0, 1.0, 1.0]
    # three levels, soft reset: H -1.5 (V -1.5), -0.25 (V -0.25), 2.375 fires 2 (V 0.375), 4.6875 fires 3 (V 1.6875)
    spikes, potential = lif_ref(x, firing=Firing(levels=3, soft_reset=True))
    assert spikes.flatten().tolist() == [0.0, 0.0, 2.0, 3.0] and potential.item() == 1.6875


def _lif_by_autograd(x, threshold, firing, tau=2.0):
    """The defining loop with surrogate spikes, differentiated by autograd (the oracle for the backward)."""
    potential, spikes = torch.zeros_like(x[:, 0]), []
    sign = 1.0 if firing.signed else 0.0
    for t in range(x.shape[1]):
        charged = potential + (x[:, t] - potential) / tau
        count = sum(spike(charged - k * threshold) - sign * spike(-charged - k * threshold)
                    for k in range(1, firing.levels + 1))
        spikes.append(count)
        if firing.soft_reset:
            potential = charged - threshold * count
        else:
            potential = charged * (1 - spike(charged - threshold) - sign * spike(-charged - threshold))
    return torch.stack(spikes, 1)


@pytest.mark.parametrize("firing", FIRINGS, ids=str)
@pytest.mark.parametrize("function", [lif_ref, lif_cpu])
def test_the_hand_derived_backward_matches_autograd_through_the_loop(function, firing):
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 12, 4, dtype=torch.float64, generator=generator) * 2 + 0.5).requires_grad_(True)
    threshold = (torch.rand(4, dtype=torch.float64, generator=generator) + 0.5).requires_grad_(True)
    weights = torch.randn(3, 12, 4, dtype=torch.float64, generator=generator)
    ours = torch.autograd.grad((function(x, threshold=threshold, firing=firing)[0] * weights).sum(), (x, threshold))
    oracle = torch.autograd.grad((_lif_by_autograd(x, threshold, firing) * weights).sum(), (x, threshold))
    torch.testing.assert_close(ours, oracle)


@pytest.mark.parametrize("fast", [lif_cpu, triton_param(lif_triton)])
@pytest.mark.parametrize(("batch", "steps", "channels", "firing"),
                         [(1, 1, 1, Firing()), (2, 13, 7, Firing()), (3, 9, 300, Firing()), (2, 11, 5, FIRINGS[1]),
                          (2, 11, 5, FIRINGS[2]), (2, 7, 70, FIRINGS[4])])
def test_fast_paths_forward_backward_and_potential_equal_the_reference(fast, batch, steps, channels, firing):
    generator = torch.Generator().manual_seed(steps)
    x = torch.randn(batch, steps, channels, generator=generator) * 2 + 2
    start = torch.rand(batch, channels, generator=generator)
    threshold = torch.rand(channels, generator=generator) + 0.5
    weights = torch.randn(batch, steps, channels, generator=generator)
    results = []
    for function in (lif_ref, fast):
        leaf, theta = x.clone().requires_grad_(True), threshold.clone().requires_grad_(True)
        spikes, potential = function(leaf, potential=start, threshold=theta, firing=firing)
        results.append((spikes, potential, *torch.autograd.grad((spikes * weights).sum(), (leaf, theta))))
    assert results[0][0].abs().sum() > 0 and torch.equal(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    torch.testing.assert_close(results[1][2], results[0][2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][3], results[0][3], rtol=1e-4, atol=1e-5)
