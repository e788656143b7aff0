"""DCDM's fused A-orthogonalisation: the Triton kernel (under TRITON_INTERPRET=1 on CPU, see conftest) equals the
reference loop, and the torch-tensor DCDM path (the GPU path) equals the NumPy one."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from nmkit.core.linear import problems
from nmkit.core.linear.krylov import dcdm
from nmkit.kernels.conjugate_directions import a_orthogonalize_ref
from tests.kernels.marks import triton_kernel


def conjugate_set(matrix: np.ndarray, count: int, generator: torch.Generator) -> list[tuple]:
    """Mutually A-orthogonal directions, as DCDM keeps them."""
    previous = []
    for _ in range(count):
        p = a_orthogonalize_ref(torch.randn(len(matrix), dtype=torch.float64, generator=generator), previous)
        ap = torch.from_numpy(matrix) @ p
        previous.append((p, ap, float(p @ ap)))
    return previous


@pytest.mark.parametrize(("n", "k"), [(5, 1), (1000, 2), (3001, 3)])
@triton_kernel
def test_triton_orthogonalisation_equals_the_reference(n, k):
    from nmkit.kernels.gpu.conjugate_directions import a_orthogonalize_triton

    generator = torch.Generator().manual_seed(n)
    root = torch.randn(n, n, dtype=torch.float64, generator=generator) / n**0.5
    matrix = (root @ root.T + torch.eye(n, dtype=torch.float64)).numpy()
    previous = conjugate_set(matrix, k, generator)
    q = torch.randn(n, dtype=torch.float64, generator=generator)
    fused = a_orthogonalize_triton(q, previous, block=256)
    torch.testing.assert_close(fused, a_orthogonalize_ref(q, previous), rtol=1e-9, atol=1e-9)
    for p, _, _ in previous:
        assert abs(float(fused @ (torch.from_numpy(matrix) @ p))) < 1e-8 * float(fused.norm() * p.norm()) * n


def test_the_torch_tensor_path_equals_the_numpy_path():
    problem = problems.build("diffusion2d", 10, obstacle="sphere")
    b = problems.right_hand_side(problem, "random", np.random.default_rng(0))
    coo = sp.coo_matrix(problem.matrix)
    matrix = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                     check_invariants=True).coalesce()
    direction = lambda r: r + 0.1 * np.tanh(3 * r)  # noqa: E731 - any deterministic nonlinear generator
    on_numpy = dcdm(problem.matrix, b, direction, tol=1e-8, max_iter=200)
    on_torch = dcdm(matrix, torch.from_numpy(b), lambda r: r + 0.1 * torch.tanh(3 * r), tol=1e-8, max_iter=200)
    assert on_torch.iterations == on_numpy.iterations and on_torch.converged
    np.testing.assert_allclose(on_torch.x.numpy(), on_numpy.x, rtol=1e-7, atol=1e-10)


def test_the_device_matrix_multiplies_like_the_scipy_one():
    from nmkit.core.linear.api import device_matrix

    problem = problems.build("poisson3d", 5, obstacle="box")
    x = np.random.default_rng(0).standard_normal(problem.size)
    np.testing.assert_allclose((device_matrix(problem.matrix, "cpu") @ torch.from_numpy(x)).numpy(),
                               problem.matrix @ x, rtol=1e-12)
