"""WKV: the reference against its defining O(T^2) sum, its hand-derived backward by gradcheck, chunked = whole,
stability where the definition overflows; the compiled CPU loops and the Triton kernels (interpreter) against the
reference."""

import pytest
import torch

from nmkit.kernels.wkv import wkv_cpu, wkv_ref, wkv_triton
from tests.kernels.marks import triton_param


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
    torch.testing.assert_close(wkv_ref(w, u, k, v)[0], _wkv_by_definition(w, u, k, v))


def test_wkv_is_stable_where_the_definition_overflows():
    w, u, k, v = _inputs(dtype=torch.float32)
    out, _ = wkv_ref(w, u, k + 200.0, v)  # e^{k} overflows float32; the ratio does not change
    torch.testing.assert_close(out, wkv_ref(w, u, k, v)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("function", [wkv_ref, wkv_cpu])
def test_the_hand_derived_backward_passes_gradcheck(function):
    w, u, k, v = (t.requires_grad_(True) for t in _inputs(batch=2, steps=5, channels=3))
    assert torch.autograd.gradcheck(lambda *a: function(*a)[0], (w, u, k, v))


def test_the_backward_matches_autograd_through_the_definition():
    w, u, k, v = (t.requires_grad_(True) for t in _inputs(steps=6, seed=3))
    weights = torch.randn(2, 6, 5, dtype=torch.float64)
    ours = torch.autograd.grad((wkv_ref(w, u, k, v)[0] * weights).sum(), (w, u, k, v))
    oracle = torch.autograd.grad((_wkv_by_definition(w, u, k, v) * weights).sum(), (w, u, k, v))
    for a, b in zip(ours, oracle, strict=True):
        torch.testing.assert_close(a, b)


def test_chunks_with_carried_state_equal_one_call():
    w, u, k, v = _inputs(steps=9)
    whole, _ = wkv_ref(w, u, k, v)
    first, state = wkv_ref(w, u, k[:, :4], v[:, :4])
    second, _ = wkv_ref(w, u, k[:, 4:], v[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


@pytest.mark.parametrize("fast", [wkv_cpu, triton_param(wkv_triton)])
@pytest.mark.parametrize(("batch", "steps", "channels"), [(1, 1, 1), (2, 9, 5), (3, 17, 130)])
def test_fast_paths_forward_backward_and_state_equal_the_reference(fast, batch, steps, channels):
    w, u, k, v = (t.float() for t in _inputs(batch, steps, channels, seed=steps))
    k = k * 3  # spread the exponents so the stabiliser matters
    weights = torch.randn(batch, steps, channels)
    results = []
    for function in (wkv_ref, fast):
        leaves = [t.clone().requires_grad_(True) for t in (w, u, k, v)]
        first, state = function(*leaves[:2], leaves[2][:, :2], leaves[3][:, :2])
        rest, final = function(*leaves[:2], leaves[2][:, 2:], leaves[3][:, 2:], state)
        out = torch.cat([first, rest], 1)
        grads = torch.autograd.grad((out * weights).sum(), leaves)
        results.append((out, *final, *grads))
    for ours, reference in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
