"""``solve(A, b)``: the library entry point, with the names scipy.sparse.linalg users expect.

    x, info = solve(A, b, method="pcg-ic", rtol=1e-8, maxiter=500, callback=lambda xk: ...)

``A`` is a SciPy sparse matrix or array, a dense array, or a ``LinearOperator`` (cg only: the preconditioners need
A's entries). ``info`` carries the iterations, whether ``rtol`` was reached, the residual history and the true
relative residual ||b - A x|| / ||b|` recomputed in float64 from the returned ``x``. The CLI calls this function.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from nmkit.core.errors import InputError
from nmkit.core.linear.incomplete_cholesky import IncompleteCholesky
from nmkit.core.linear.krylov import Solve, dcdm, pcg

METHODS = ("cg", "pcg-jacobi", "pcg-ic", "amg", "dcdm")


@dataclass
class SolveInfo:
    """What a solve did: scipy's ``info`` as a record (``converged`` is scipy's ``info == 0``)."""

    method: str
    iterations: int
    converged: bool
    residuals: list[float] = field(repr=False)  # relative residual after each iteration, index 0 the start
    true_relative_residual: float
    fallbacks: int = 0  # dcdm: steps along the residual instead of the network's direction
    setup_seconds: float = 0.0
    solve_seconds: float = 0.0


def solve(A, b, *, method: str = "cg", rtol: float = 1e-8, maxiter: int | None = None,
          callback: Callable[[np.ndarray], None] | None = None, model=None, grid: tuple[int, ...] | None = None,
          fluid: np.ndarray | None = None, device: str = "cpu", k_orth: int = 2, true_residual_every: int = 1,
          safeguard: bool = True) -> tuple[np.ndarray, SolveInfo]:
    """Solve ``A x = b`` for symmetric positive definite ``A`` from x0 = 0, stopping at ||b - A x|| / ||b|| <= rtol.

    ``method``: cg, pcg-jacobi, pcg-ic (IC(0)), amg (PyAMG smoothed aggregation as the preconditioner) or dcdm
    (``model``, a trained DirectionNet, on the unknowns laid out as ``grid``; ``fluid`` masks the unknowns the
    network may touch, default all; ``k_orth``, ``true_residual_every``, ``safeguard`` as in
    :func:`nmkit.core.linear.krylov.dcdm`). ``maxiter`` defaults to 10 n, as in scipy; ``callback(xk)`` is called
    after every iteration.
    """
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    operator = A if isinstance(A, spla.LinearOperator) else sp.csr_matrix(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).ravel()
    n = operator.shape[0]
    if operator.shape != (n, n) or b.shape != (n,):
        raise InputError(f"A is {operator.shape[0]} x {operator.shape[1]} and b has {b.size} entries: need n x n and n")
    if not np.all(np.isfinite(b)) or not np.any(b):
        raise InputError("b must be finite and not all zeros")
    if isinstance(operator, spla.LinearOperator) and method != "cg":
        raise InputError(f"method {method} needs the matrix's entries; a LinearOperator takes method cg")
    options = {"tol": rtol, "max_iter": maxiter if maxiter is not None else 10 * n, "callback": callback}
    start = time.perf_counter()
    if method == "dcdm":
        options.update(k_orth=k_orth, true_residual_every=true_residual_every, safeguard=safeguard)
        result, setup = _dcdm(operator, b, model, grid, fluid, device, options, start)
    else:
        preconditioner = _preconditioner(method, operator)
        setup = time.perf_counter() - start
        result = pcg(operator, b, preconditioner=preconditioner, method=method, **options)
    return result.x, _info(result, method, setup, operator, b)


def available_methods() -> list[str]:
    """The methods that can run here (amg needs PyAMG)."""
    return [m for m in METHODS if m != "amg" or importlib.util.find_spec("pyamg") is not None]


def _dcdm(matrix, b, model, grid, fluid, device, options, start) -> tuple[Solve, float]:
    import torch

    from nmkit.core.linear.network import direction_function

    if model is None:
        raise InputError("method dcdm needs a trained model (nmkit solve-linear train)")
    if grid is None or len(grid) != model.dim or int(np.prod(grid)) != b.size:
        raise InputError(f"method dcdm needs the {model.dim}-D grid the {b.size} unknowns live on (--grid, e.g. "
                         f"{'x'.join(['64'] * model.dim)})")
    mask = np.ones(b.size, np.float32) if fluid is None else np.asarray(fluid, np.float32).ravel()
    direction = direction_function(model.to(device), tuple(grid), torch.from_numpy(mask).to(device))
    system, rhs = matrix, b
    if device != "cpu":
        system, rhs = device_matrix(matrix, device), torch.from_numpy(b).to(device)
    setup = time.perf_counter() - start
    result = dcdm(system, rhs, direction, **options)
    if device != "cpu":
        result.x = result.x.cpu().numpy()
    return result, setup


def device_matrix(matrix: sp.csr_matrix, device: str):
    """The matrix as a float64 sparse CSR tensor on the device (the GPU path of DCDM)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr).long(), torch.from_numpy(matrix.indices).long(),
                                       torch.from_numpy(matrix.data), matrix.shape, device=device)


def _preconditioner(method: str, matrix: sp.csr_matrix):
    if method == "pcg-jacobi":
        inverse_diagonal = 1.0 / matrix.diagonal()
        return lambda r: inverse_diagonal * r
    if method == "pcg-ic":
        return IncompleteCholesky(matrix).solve
    if method == "amg":
        try:
            import pyamg
        except ImportError:
            raise InputError("method amg needs PyAMG (pip install pyamg)") from None
        return pyamg.smoothed_aggregation_solver(matrix).aspreconditioner(cycle="V")
    return None


def _info(result: Solve, method: str, setup: float, operator, b: np.ndarray) -> SolveInfo:
    residual = float(np.linalg.norm(b - operator @ result.x) / np.linalg.norm(b))
    return SolveInfo(method, result.iterations, result.converged, result.history, residual, result.fallbacks, setup,
                     result.solve_seconds)
