"""The library entry point: scipy's names, any operator form, a callback per iteration, the true residual."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from nmkit.core.errors import InputError
from nmkit.core.linear import problems, solve
from nmkit.core.linear.api import available_methods


@pytest.fixture(scope="module")
def system():
    problem = problems.build("poisson2d", 20)
    return problem.matrix, np.random.default_rng(0).standard_normal(400)


@pytest.mark.parametrize("method", available_methods()[:-1])  # every method but dcdm (tests/core/linear has those)
def test_every_method_reaches_rtol_and_reports_the_residual_of_x(system, method):
    matrix, b = system
    x, info = solve(matrix, b, method=method, rtol=1e-10)
    assert info.converged and info.method == method
    assert info.true_relative_residual == pytest.approx(np.linalg.norm(b - matrix @ x) / np.linalg.norm(b))
    assert info.true_relative_residual <= 1e-9 and len(info.residuals) == info.iterations + 1
    np.testing.assert_allclose(x, spla.spsolve(matrix.tocsc(), b), rtol=1e-7, atol=1e-9)


def test_operator_forms_and_callback(system):
    matrix, b = system
    seen = []
    x_dense, info = solve(matrix.toarray(), b, rtol=1e-8, callback=lambda xk: seen.append(xk.copy()))
    assert len(seen) == info.iterations
    np.testing.assert_allclose(seen[-1], x_dense)
    x_operator, _ = solve(spla.aslinearoperator(matrix), b, rtol=1e-8)
    x_coo, _ = solve(sp.coo_matrix(matrix), b, rtol=1e-8)
    np.testing.assert_allclose(x_operator, x_dense)
    np.testing.assert_allclose(x_coo, x_dense)


def test_maxiter_and_refusals(system):
    matrix, b = system
    _, info = solve(matrix, b, maxiter=3)
    assert not info.converged and info.iterations == 3
    with pytest.raises(InputError, match="LinearOperator takes method cg"):
        solve(spla.aslinearoperator(matrix), b, method="pcg-ic")
    with pytest.raises(InputError, match="n x n"):
        solve(matrix, b[:-1])
    with pytest.raises(InputError, match="needs a trained model"):
        solve(matrix, b, method="dcdm")
