"""Krylov solvers with one stopping rule: ||b - A x|| / ||b|| <= tol, from x0 = 0.

The rule is checked on the true residual: when the recurrence's residual reaches tol, b - A x is recomputed and,
if it has not, the solve restarts from it (residual replacement), so "converged" never rests on a recurrence that
drifted (as it does on matrices that are not positive definite, which CG detects and refuses).

DCDM (Kaneda et al., ICML 2023, Alg. 2): the search direction is a generator's output on the normalised residual,
q = f(r / ||r||), A-orthogonalised against the last k directions,
    q <- q - sum_j (q . A p_j) / (p_j . A p_j) p_j,
then an exact line search along q: x += (q . r) / (q . A q) q. Every step minimises the A-norm error along q, so
that error never grows, whatever f is; with f = identity and k >= 1 the iterates are CG's.

A step along q lowers ||e||_A^2 by exactly (q . r)^2 / (q . A q). An imperfect network can return a direction
that is almost in the span already searched, and since f sees only r / ||r||, the method then stalls for good.
nmkit's safeguard (not in the paper) also scores the A-orthogonalised residual and steps along whichever of the
two lowers the error more; the steps it takes from the residual are counted as fallbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from nmkit.core.errors import InputError
from nmkit.kernels.conjugate_directions import a_orthogonalize


class NotPositiveDefinite(InputError):
    """A curvature p^T A p <= 0 met during a solve: conjugate gradients' proof that A is not SPD."""


@dataclass
class Solve:
    method: str
    x: np.ndarray = field(repr=False)
    iterations: int
    converged: bool
    history: list[float]  # relative residual after each iteration (index 0: the start)
    fallbacks: int = 0  # dcdm: steps taken along the residual instead of the network's direction
    setup_seconds: float = 0.0
    solve_seconds: float = 0.0

    def true_relative_residual(self, matrix: sp.spmatrix, b: np.ndarray) -> float:
        return float(np.linalg.norm(b - matrix @ self.x) / np.linalg.norm(b))


def pcg(matrix: sp.spmatrix, b: np.ndarray, *, tol: float, max_iter: int,
        preconditioner: Callable[[np.ndarray], np.ndarray] | None = None, method: str = "cg",
        callback: Callable[[np.ndarray], None] | None = None) -> Solve:
    """(Preconditioned) conjugate gradients; the preconditioner applies M^-1; ``callback(x)`` after each step."""
    start = time.perf_counter()
    norm_b = np.linalg.norm(b)
    x = np.zeros_like(b)
    r = b.copy()
    z = preconditioner(r) if preconditioner else r
    p = z.copy()
    rz = r @ z
    history = [1.0]
    iterations = 0
    while iterations < max_iter:
        if history[-1] <= tol:  # the recurrence says done: confirm on the true residual, else restart from it
            r = b - matrix @ x
            history[-1] = float(np.linalg.norm(r) / norm_b)
            if history[-1] <= tol:
                break
            z = preconditioner(r) if preconditioner else r
            p, rz = z.copy(), r @ z
        ap = matrix @ p
        pap = float(p @ ap)
        if not (pap > 0 and rz > 0):
            raise NotPositiveDefinite(f"{method}: p^T A p = {pap:.3g} at iteration {iterations + 1}: the matrix"
                                      f"{' or its preconditioner' if preconditioner else ''} is not positive definite")
        alpha = rz / pap
        x += alpha * p
        r -= alpha * ap
        iterations += 1
        history.append(float(np.linalg.norm(r) / norm_b))
        if callback is not None:
            callback(x)
        z = preconditioner(r) if preconditioner else r
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    return Solve(method, x, iterations, history[-1] <= tol, history, solve_seconds=time.perf_counter() - start)


def dcdm(matrix: sp.spmatrix, b: np.ndarray, direction: Callable[[np.ndarray], np.ndarray], *, tol: float,
         max_iter: int, k_orth: int = 2, true_residual_every: int = 1, safeguard: bool = True,
         callback: Callable | None = None) -> Solve:
    """Deep conjugate directions with ``direction`` as f; the true residual b - A x replaces the recurrence every
    ``true_residual_every`` iterations (1: always, as the authors' code does). Works on NumPy arrays with a SciPy
    matrix, or on torch tensors with a sparse CSR tensor (the GPU path: orthogonalisation fused in Triton)."""
    start = time.perf_counter()
    norm_b = _norm(b)
    x = b * 0
    r = b - x
    previous: list[tuple[np.ndarray, np.ndarray, float]] = []  # (p, A p, p . A p), newest last
    history = [1.0]
    iterations = fallbacks = 0
    while iterations < max_iter:
        if history[-1] <= tol:  # confirm on the true residual (the recurrence may have been used since)
            r = b - matrix @ x
            history[-1] = _norm(r) / norm_b
            if history[-1] <= tol:
                break
        q, aq, qaq = _conjugated(matrix, direction(r / _norm(r)), previous)
        if safeguard:
            s, as_, sas = _conjugated(matrix, r, previous)
            if _gain(s, sas, r) > _gain(q, qaq, r):
                q, aq, qaq = s, as_, sas
                fallbacks += 1
        if not qaq > 0:  # nothing left to search along
            break
        step = float(q @ r) / qaq
        x += step * q
        iterations += 1
        r = b - matrix @ x if iterations % true_residual_every == 0 else r - step * aq
        history.append(_norm(r) / norm_b)
        if callback is not None:
            callback(x)
        previous = ([*previous, (q, aq, qaq)])[-k_orth:] if k_orth else []
    return Solve("dcdm", x, iterations, history[-1] <= tol, history, fallbacks,
                 solve_seconds=time.perf_counter() - start)


def _conjugated(matrix, q, previous) -> tuple[object, object, float]:
    """q A-orthogonalised against the previous directions, with A q and q . A q."""
    q = a_orthogonalize(q, previous)
    aq = matrix @ q
    return q, aq, float(q @ aq)


def _gain(q, qaq: float, r) -> float:
    """How much a line search along q lowers ||e||_A^2."""
    return float(q @ r) ** 2 / qaq if qaq > 0 else 0.0


def _norm(v) -> float:
    return float(v @ v) ** 0.5
