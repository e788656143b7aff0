"""Top-k sparse simplex projection: the reference equals a brute-force search over supports, and the
Triton kernel (under TRITON_INTERPRET=1 on CPU, see conftest) equals the reference."""

import itertools

import numpy as np
import pytest
import torch

from nmkit.kernels.sparse_simplex import topk_sparse_simplex_ref
from tests.kernels.marks import triton_kernel


def brute_force_projection(x: np.ndarray, k: int) -> np.ndarray:
    """argmin ||y - x||^2 over y >= 0, sum(y) = 1, at most k non-zeros: try every support."""
    best, best_distance = None, np.inf
    for size in range(1, k + 1):
        for support in itertools.combinations(range(len(x)), size):
            s = list(support)
            y_s = x[s] - (x[s].sum() - 1) / size
            if np.any(y_s < 0):
                continue  # not the simplex projection on this support; a smaller support covers it
            y = np.zeros_like(x)
            y[s] = y_s
            distance = np.sum((y - x) ** 2)
            if distance < best_distance - 1e-15:
                best, best_distance = y, distance
    return best


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_reference_equals_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, rng.choice([0.1, 1.0, 5.0]), (1, 6))
    scale = rng.uniform(0.2, 2.0, 1)
    values, indices = topk_sparse_simplex_ref(torch.from_numpy(x), torch.from_numpy(scale), k)
    dense = torch.zeros(1, 6, dtype=torch.float64).scatter_(1, indices, values).numpy()[0]
    np.testing.assert_allclose(dense, brute_force_projection(x[0] / scale[0], k), atol=1e-12)


@triton_kernel
@pytest.mark.parametrize(("rows", "m", "k"), [(3, 5, 1), (4, 16, 2), (5, 33, 3), (2, 100, 4), (3, 7, 7), (2, 64, 5)])
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_triton_kernel_equals_reference(rows, m, k, dtype, tolerance):
    from nmkit.kernels.gpu.sparse_simplex import topk_sparse_simplex_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator().manual_seed(rows * m + k)
    x = torch.randn(2, rows, m, generator=generator, dtype=dtype).to(device)
    scale = (torch.rand(2, rows, generator=generator, dtype=dtype) + 0.1).to(device)
    values, indices = topk_sparse_simplex_triton(x, scale, k)
    ref_values, ref_indices = topk_sparse_simplex_ref(x, scale, k)
    torch.testing.assert_close(indices, ref_indices, rtol=0, atol=0)
    torch.testing.assert_close(values, ref_values, rtol=tolerance, atol=tolerance)


@triton_kernel
@pytest.mark.parametrize(("batch", "rows", "m", "k"), [(1, 4, 9, 2), (3, 5, 17, 3), (2, 40, 12, 1)])
def test_triton_mass_accumulation_equals_scatter_add(batch, rows, m, k):
    from nmkit.kernels.gpu.sparse_simplex import topk_sparse_simplex_triton
    from nmkit.kernels.sparse_simplex import topk_sparse_simplex_mass_ref

    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator().manual_seed(batch * rows + m)
    x = torch.randn(batch, rows, m, generator=generator, dtype=torch.float64).to(device)
    scale = (torch.rand(batch, rows, generator=generator, dtype=torch.float64) + 0.1).to(device)
    weight = torch.rand(batch, rows, generator=generator, dtype=torch.float64).to(device)
    *_, mass = topk_sparse_simplex_triton(x, scale, k, weight)
    *_, expected = topk_sparse_simplex_mass_ref(x, scale, k, weight)
    torch.testing.assert_close(mass, expected, rtol=1e-12, atol=1e-12)
