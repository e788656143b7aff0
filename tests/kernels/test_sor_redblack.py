"""Red-black half-sweeps: the compiled CPU loops and the Triton kernel (under TRITON_INTERPRET=1 on CPU,
see conftest) both equal the PyTorch reference."""


import numpy as np
import pytest
import torch

from nmkit.core.sor.stencil import _PARALLEL, _SERIAL
from nmkit.kernels.sor_redblack import redblack_half_sweep_ref, redblack_sweeps
from tests.kernels.marks import triton_kernel


def grids(side, seed):
    rng = np.random.default_rng(seed)
    u, f = np.zeros((side + 2, side + 2)), np.zeros((side + 2, side + 2))
    u[1:-1, 1:-1] = rng.normal(size=(side, side))
    f[1:-1, 1:-1] = rng.normal(size=(side, side))
    return u, f


@pytest.mark.parametrize("side", [1, 4, 7, 33])
@pytest.mark.parametrize("colour", [0, 1])
@pytest.mark.parametrize("compiled", [_SERIAL, _PARALLEL], ids=["serial", "parallel"])
def test_compiled_half_sweep_equals_reference(side, colour, compiled):
    u, f = grids(side, side)
    expected = torch.from_numpy(u.copy())
    redblack_half_sweep_ref(expected, torch.from_numpy(f), 4.3, 0.9, 1.4, colour)
    compiled[2](u, f, 4.3, 0.9, 1.4, colour)
    np.testing.assert_allclose(u, expected.numpy(), rtol=1e-14, atol=1e-14)


@triton_kernel
@pytest.mark.parametrize("side", [1, 5, 16, 30])
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_triton_half_sweeps_equal_reference(side, dtype, tolerance):
    from nmkit.kernels.gpu.sor_redblack import redblack_half_sweep_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    u, f = (torch.from_numpy(a).to(device=device, dtype=dtype) for a in grids(side, 3))
    expected = u.clone()
    for colour in (0, 1, 0):
        redblack_half_sweep_ref(expected, f, 4.0, 1.0, 1.7, colour)
        redblack_half_sweep_triton(u, f, 4.0, 1.0, 1.7, colour)
    torch.testing.assert_close(u, expected, rtol=tolerance, atol=tolerance)


def test_sweeps_on_cpu_tensors_use_the_reference():
    u, f = (torch.from_numpy(a) for a in grids(6, 4))
    expected = u.clone()
    for colour in (0, 1):
        redblack_half_sweep_ref(expected, f, 4.0, 1.0, 1.2, colour)
    redblack_sweeps(u, f, 4.0, 1.0, 1.2, 1)
    torch.testing.assert_close(u, expected, rtol=0, atol=0)
