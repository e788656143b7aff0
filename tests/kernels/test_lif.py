"""LIF neuron: dynamics on a hand-computed sequence, the ATan surrogate at known points, the hand-derived
backward against autograd through the defining loop, and the compiled CPU loops and fused Triton kernels
(interpreter) against the reference."""

import math

import pytest
import torch

from nmkit.kernels.lif import lif_cpu, lif_ref, lif_triton, spike
from tests.kernels.marks import triton_param


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


def _lif_by_autograd(x, tau=2.0, threshold=1.0):
    """The defining loop with the surrogate spike, differentiated by autograd (the oracle for the backward)."""
    potential, spikes = torch.zeros_like(x[:, 0]), []
    for t in range(x.shape[1]):
        charged = potential + (x[:, t] - potential) / tau
        spikes.append(spike(charged - threshold))
        potential = charged * (1 - spikes[-1])
    return torch.stack(spikes, 1)


@pytest.mark.parametrize("function", [lif_ref, lif_cpu])
def test_the_hand_derived_backward_matches_autograd_through_the_loop(function):
    x = (torch.randn(3, 12, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 + 1)
    x.requires_grad_(True)
    weights = torch.randn(3, 12, 4, dtype=torch.float64)
    ours = torch.autograd.grad((function(x)[0] * weights).sum(), x)[0]
    oracle = torch.autograd.grad((_lif_by_autograd(x) * weights).sum(), x)[0]
    torch.testing.assert_close(ours, oracle)


@pytest.mark.parametrize("fast", [lif_cpu, triton_param(lif_triton)])
@pytest.mark.parametrize(("batch", "steps", "channels"), [(1, 1, 1), (2, 13, 7), (3, 9, 300)])
def test_fast_paths_forward_backward_and_potential_equal_the_reference(fast, batch, steps, channels):
    generator = torch.Generator().manual_seed(steps)
    x = torch.randn(batch, steps, channels, generator=generator) * 2 + 1
    start = torch.rand(batch, channels, generator=generator)
    weights = torch.randn(batch, steps, channels, generator=generator)
    results = []
    for function in (lif_ref, fast):
        leaf = x.clone().requires_grad_(True)
        spikes, potential = function(leaf, potential=start)
        results.append((spikes, potential, torch.autograd.grad((spikes * weights).sum(), leaf)[0]))
    assert results[0][0].sum() > 0 and torch.equal(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    torch.testing.assert_close(results[1][2], results[0][2], rtol=1e-5, atol=1e-6)
