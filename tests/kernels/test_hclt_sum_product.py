"""The HCLT sum-product kernel (under TRITON_INTERPRET=1 on CPU, see conftest) equals its reference,
and the torch likelihood built on it equals the numpy one."""


import numpy as np
import pytest
import torch

from nmkit.core.pc import HCLT
from nmkit.core.pc.structure import Tree
from nmkit.kernels.hclt_sum_product import sum_product_ref
from tests.kernels.marks import triton_kernel


@triton_kernel
@pytest.mark.parametrize(("n", "k"), [(1, 1), (5, 3), (33, 8), (20, 17), (64, 32)])
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_triton_sum_product_equals_reference(n, k, dtype, tolerance):
    from nmkit.kernels.gpu.hclt_sum_product import sum_product_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator().manual_seed(n * 31 + k)
    rows = torch.rand(n, k, generator=generator, dtype=dtype).to(device)
    matrix = torch.rand(k, k, generator=generator, dtype=dtype).to(device)
    out, log_scale = sum_product_triton(rows, matrix)
    expected, expected_log = sum_product_ref(rows, matrix)
    torch.testing.assert_close(out, expected, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(log_scale, expected_log, rtol=tolerance, atol=tolerance)


def test_torch_likelihood_equals_numpy_likelihood():
    rng = np.random.default_rng(0)
    tree = Tree(np.array([-1, 0, 0, 1, 1]), np.array([0, 1, 3, 4, 2]))
    model = HCLT.random(tree, 4, 3, rng)
    data = rng.integers(0, 3, (50, 5))
    np.testing.assert_allclose(model.log_likelihood_torch(data), model.log_likelihood(data), rtol=1e-12)
