"""SOR and SSOR-preconditioned CG on CSR matrices, compiled with numba.

SOR (Khodak et al. 2024, `solvers/sor.m`): x <- x + M^-1 (b - A x) with M = D/omega + L, i.e. one forward
Gauss-Seidel sweep relaxed by omega, in lexicographic order. SSOR-PCG (`solvers/ssor_pcg.m`): CG
preconditioned by M = (D + omega L) D^-1 (D + omega L)^T / (omega (2 - omega)). Both stop when
||b - A x|| / ||b - A x0|| < rtol and report hitting the iteration cap instead of hiding it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from nmkit.core.compiled import njit
from nmkit.core.errors import InputError


@dataclass(frozen=True)
class SolveResult:
    x: np.ndarray
    iterations: int
    converged: bool
    residual: float  # final ||b - A x|| / ||b - A x0||


@njit
def _residual_norm(indptr, indices, data, x, b):
    total = 0.0
    for i in range(b.shape[0]):
        r = b[i]
        for p in range(indptr[i], indptr[i + 1]):
            r -= data[p] * x[indices[p]]
        total += r * r
    return np.sqrt(total)


@njit
def _sweep(indptr, indices, data, diag, b, x, omega):
    """One lexicographic SOR sweep, in place."""
    for i in range(b.shape[0]):
        s = b[i]
        for p in range(indptr[i], indptr[i + 1]):
            s -= data[p] * x[indices[p]]
        x[i] += omega * s / diag[i]  # s includes -a_ii x_i: this is (1-omega) x_i + omega (GS value)


@njit
def sweeps(indptr, indices, data, diag, b, x, omega, count):
    """``count`` SOR sweeps without residual checks (the unit of throughput benchmarks)."""
    for _ in range(count):
        _sweep(indptr, indices, data, diag, b, x, omega)


@njit
def _sor(indptr, indices, data, diag, b, x, omega, rtol, max_iter):
    initial = _residual_norm(indptr, indices, data, x, b)
    if initial == 0.0:
        return 0, 0.0
    relative = 1.0
    for it in range(1, max_iter + 1):
        _sweep(indptr, indices, data, diag, b, x, omega)
        relative = _residual_norm(indptr, indices, data, x, b) / initial
        if relative < rtol:
            return it, relative
    return max_iter, relative


@njit
def _ssor_apply(indptr, indices, data, diag, omega, r, z):
    """z = M^-1 r for M = (D + omega L) D^-1 (D + omega L)^T / (omega (2 - omega)), A symmetric."""
    n = r.shape[0]
    y = np.empty(n)
    for i in range(n):  # (D + omega L) y = r
        s = r[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j < i:
                s -= omega * data[p] * y[j]
        y[i] = s / diag[i]
    for i in range(n):
        y[i] *= diag[i]
    for i in range(n - 1, -1, -1):  # (D + omega U) z = D y, U = L^T
        s = y[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j > i:
                s -= omega * data[p] * z[j]
        z[i] = s / diag[i]
    scale = omega * (2.0 - omega)
    for i in range(n):
        z[i] *= scale


@njit
def _residual(indptr, indices, data, b, x, r):
    """r = b - A x."""
    for i in range(b.shape[0]):
        s = b[i]
        for p in range(indptr[i], indptr[i + 1]):
            s -= data[p] * x[indices[p]]
        r[i] = s


@njit
def _ssor_pcg(indptr, indices, data, diag, b, x, omega, rtol, max_iter):
    """SSOR-preconditioned CG; (iterations, relative residual), the residual -1.0 when a curvature d^T A d <= 0
    shows A is not positive definite. Convergence is confirmed on the true residual b - A x; when the recurrence
    drifted from it, CG restarts from the true one."""
    n = b.shape[0]
    r = np.empty(n)
    _residual(indptr, indices, data, b, x, r)
    initial = np.sqrt(np.dot(r, r))
    if initial == 0.0:
        return 0, 0.0
    z = np.empty(n)
    _ssor_apply(indptr, indices, data, diag, omega, r, z)
    d = z.copy()
    rz = np.dot(r, z)
    q = np.empty(n)
    relative = 1.0
    for it in range(1, max_iter + 1):
        for i in range(n):
            s = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                s += data[p] * d[indices[p]]
            q[i] = s
        curvature = np.dot(d, q)
        if not curvature > 0.0:
            return it, -1.0
        step = rz / curvature
        x += step * d
        r -= step * q
        relative = np.sqrt(np.dot(r, r)) / initial
        if relative < rtol:
            _residual(indptr, indices, data, b, x, r)
            relative = np.sqrt(np.dot(r, r)) / initial
            if relative < rtol:
                return it, relative
            _ssor_apply(indptr, indices, data, diag, omega, r, z)  # restart from the true residual
            d[:] = z
            rz = np.dot(r, z)
            continue
        _ssor_apply(indptr, indices, data, diag, omega, r, z)
        rz_next = np.dot(r, z)
        d *= rz_next / rz
        d += z
        rz = rz_next
    return max_iter, relative


def check_system(a: scipy.sparse.csr_array, b: np.ndarray, name: str = "A") -> None:
    if a.shape[0] != a.shape[1]:
        raise InputError(f"{name}: expected a square matrix, found shape {a.shape}")
    if b.shape != (a.shape[0],):
        raise InputError(f"{name}: right-hand side has shape {b.shape}, expected ({a.shape[0]},)")
    if np.any(a.diagonal() == 0):
        raise InputError(f"{name}: zero on the diagonal at row {int(np.flatnonzero(a.diagonal() == 0)[0])}; "
                         "SOR divides by it")
    if not (np.all(np.isfinite(a.data)) and np.all(np.isfinite(b))):
        raise InputError(f"{name}: NaN or infinite entries")


@dataclass(frozen=True)
class System:
    """A system in the arrays the compiled solvers take; prepare once, solve with many omegas."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    diag: np.ndarray
    b: np.ndarray

    @classmethod
    def prepare(cls, a, b: np.ndarray) -> System:
        a = scipy.sparse.csr_array(a)
        a.sort_indices()
        return cls(a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data.astype(np.float64),
                   a.diagonal().astype(np.float64), np.asarray(b, np.float64))

    def solve(self, method: str, omega: float, *, rtol: float = 1e-8, max_iter: int = 10_000,
              x0: np.ndarray | None = None) -> SolveResult:
        """Solve by ``method`` ('sor' or 'ssor-pcg') with relaxation ``omega`` in (0, 2)."""
        if not 0 < omega < 2:
            raise InputError(f"omega = {omega}: SOR needs 0 < omega < 2")
        x = np.zeros(len(self.b)) if x0 is None else np.array(x0, dtype=np.float64)
        kernel = _sor if method == "sor" else _ssor_pcg
        iterations, residual = kernel(self.indptr, self.indices, self.data, self.diag, self.b, x, float(omega),
                                      float(rtol), int(max_iter))
        if residual < 0:
            raise InputError(f"ssor-pcg met d^T A d <= 0 at iteration {iterations}: the matrix is not positive "
                             f"definite (SSOR-PCG needs an SPD system; use solver sor)")
        return SolveResult(x, int(iterations), bool(residual < rtol), float(residual))


def solve(method: str, a, b: np.ndarray, omega: float, *, rtol: float = 1e-8, max_iter: int = 10_000,
          x0: np.ndarray | None = None) -> SolveResult:
    """Solve A x = b once (see ``System`` to reuse the preparation)."""
    return System.prepare(a, b).solve(method, omega, rtol=rtol, max_iter=max_iter, x0=x0)
