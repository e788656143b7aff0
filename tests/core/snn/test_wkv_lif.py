"""SpikeGPT's building blocks: WKV against its defining O(T^2) sum, gradients by gradcheck, chunked = whole;
the LIF neuron on a hand-computed sequence and the ATan surrogate at known points."""

import math

import pytest
import torch

from nmkit.core.snn.lif import lif_reference, spike
from nmkit.core.snn.wkv import wkv_reference


def _wkv_by_definition(w, u, k, v):
    batch, steps, channels = k.shape
    out = torch.empty_like(k)
    for t in range(steps):
        weights = [torch.exp(-(t - 1 - i) * w + k[:, i]) for i in range(t)] + [torch.exp(u + k[:, t])]
        values = [v[:, i] for i in range(t + 1)]
        out[:, t] = sum(a * b for a, b in zip(weights, values, strict=True)) / sum(weights)
    return out


def _inputs(batch=2, steps=7, channels=5, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    w = torch.rand(channels, generator=generator, dtype=dtype) * 2 + 0.1
    u = torch.randn(channels, generator=generator, dtype=dtype)
    k = torch.randn(batch, steps, channels, generator=generator, dtype=dtype)
    v = torch.randn(batch, steps, channels, generator=generator, dtype=dtype)
    return w, u, k, v


def test_wkv_equals_its_definition():
    w, u, k, v = _inputs()
    torch.testing.assert_close(wkv_reference(w, u, k, v)[0], _wkv_by_definition(w, u, k, v))


def test_wkv_is_stable_where_the_definition_overflows():
    w, u, k, v = _inputs(dtype=torch.float32)
    out, _ = wkv_reference(w, u, k + 200.0, v)  # e^{k} overflows float32; the ratio does not change
    torch.testing.assert_close(out, wkv_reference(w, u, k, v)[0], rtol=1e-4, atol=1e-5)


def test_wkv_gradients_pass_gradcheck():
    w, u, k, v = (t.requires_grad_(True) for t in _inputs(batch=1, steps=4, channels=3))
    assert torch.autograd.gradcheck(lambda *a: wkv_reference(*a)[0], (w, u, k, v))


def test_chunks_with_carried_state_equal_one_call():
    w, u, k, v = _inputs(steps=9)
    whole, _ = wkv_reference(w, u, k, v)
    first, state = wkv_reference(w, u, k[:, :4], v[:, :4])
    second, _ = wkv_reference(w, u, k[:, 4:], v[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_lif_on_a_hand_computed_sequence():
    x = torch.tensor([1.0, 1.0, 1.0, 3.0, 0.0, 2.0])[None, :, None]
    # H = V/2 + X/2: 0.5 (V 0.5), 0.75 (V 0.75), 0.875 (V 0.875), 1.9375 fires (V 0), 0 (V 0), 1.0 fires
    spikes, potential = lif_reference(x)
    assert spikes.flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0] and potential.item() == 0.0
    first, middle = lif_reference(x[:, :2])
    assert first.flatten().tolist() == [0.0, 0.0] and middle.item() == 0.75  # the potential carries on
    torch.testing.assert_close(lif_reference(x[:, 2:], potential=middle)[0], spikes[:, 2:])


@pytest.mark.parametrize(("x", "expected"), [(0.0, 1.0), (1.0, 1 / (1 + math.pi**2)), (-0.5, 1 / (1 + math.pi**2 / 4))])
def test_the_atan_surrogate_gradient_at_known_points(x, expected):
    point = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    spike(point).backward()
    assert point.grad.item() == pytest.approx(expected)
    assert spike(torch.tensor(x)).item() == float(x >= 0)
