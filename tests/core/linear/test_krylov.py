"""Krylov solvers: DCDM with the identity generator is CG; any generator never increases the A-norm error."""

import numpy as np
import pytest

from nmkit.core.linear import problems
from nmkit.core.linear.krylov import dcdm, pcg


@pytest.fixture(scope="module")
def system():
    problem = problems.build("diffusion2d", 12, obstacle="sphere")
    return problem, problems.right_hand_side(problem, "random", np.random.default_rng(0))


def test_operators_are_symmetric_positive_definite():
    for name, obstacle in (("poisson2d", "none"), ("diffusion2d", "box"), ("poisson3d", "sphere")):
        matrix = problems.build(name, 6, obstacle=obstacle).matrix.toarray()
        np.testing.assert_array_equal(matrix, matrix.T)
        assert np.linalg.eigvalsh(matrix).min() > 0


def test_dirichlet_poisson_has_the_analytic_spectrum():
    n = 7
    eigenvalues = np.sort(np.linalg.eigvalsh(problems.build("poisson2d", n).matrix.toarray()))
    modes = 2 - 2 * np.cos(np.pi * np.arange(1, n + 1) / (n + 1))
    np.testing.assert_allclose(eigenvalues, np.sort(np.add.outer(modes, modes).ravel()), rtol=1e-12)


@pytest.mark.parametrize("k_orth", [1, 2, 5])
def test_dcdm_with_the_identity_reproduces_cg(system, k_orth):
    (problem, b) = system
    for steps in (1, 5, 12):
        cg = pcg(problem.matrix, b, tol=0.0, max_iter=steps)
        ours = dcdm(problem.matrix, b, lambda r: r, tol=0.0, max_iter=steps, k_orth=k_orth)
        np.testing.assert_allclose(ours.x, cg.x, rtol=1e-8, atol=1e-10)


def test_any_direction_generator_decreases_the_a_norm_error(system):
    (problem, b) = system
    matrix = problem.matrix.toarray()
    exact = np.linalg.solve(matrix, b)
    scramble = np.random.default_rng(1).standard_normal((len(b), len(b)))  # a poor, non-symmetric generator
    errors = []
    for steps in range(0, 30):
        x = dcdm(problem.matrix, b, lambda r: scramble @ r + np.tanh(r), tol=0.0, max_iter=steps).x
        errors.append((exact - x) @ matrix @ (exact - x))
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < errors[0]


def test_pcg_reaches_the_tolerance_and_reports_the_true_residual(system):
    (problem, b) = system
    jacobi = 1 / problem.matrix.diagonal()
    result = pcg(problem.matrix, b, tol=1e-10, max_iter=500, preconditioner=lambda r: jacobi * r, method="pcg")
    assert result.converged and result.true_relative_residual(problem.matrix, b) < 1e-9


def test_incomplete_cholesky_is_exact_without_fill_and_helps_on_a_grid():
    import scipy.sparse as sp

    from nmkit.core.linear.incomplete_cholesky import IncompleteCholesky

    n = 30
    tridiagonal = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(n, n), format="csr")
    r = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(IncompleteCholesky(tridiagonal).solve(r), np.linalg.solve(tridiagonal.toarray(), r),
                               rtol=1e-12)
    problem = problems.build("poisson2d", 32)
    b = problems.right_hand_side(problem, "random", np.random.default_rng(2))
    plain = pcg(problem.matrix, b, tol=1e-8, max_iter=1000)
    ic = pcg(problem.matrix, b, tol=1e-8, max_iter=1000, preconditioner=IncompleteCholesky(problem.matrix).solve)
    assert ic.converged and ic.iterations < 0.6 * plain.iterations
