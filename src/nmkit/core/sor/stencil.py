"""Matrix-free red-black SOR for constant-coefficient 5-point operators A = d I - o (4 neighbours).

Red-black ordering makes each half-sweep a parallel loop over the rows (compiled with numba; large
grids use all cores), and the residual is computed matrix-free. For the 5-point stencil the red-black
ordering is "consistently ordered", so Young's omega* is the same as for the lexicographic sweep
(iteration counts differ by a few per cent). On CUDA tensors the Triton kernel of
``kernels/sor_redblack.py`` does the half-sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from nmkit.core.compiled import njit
from nmkit.core.sor.solvers import SolveResult

PARALLEL_SIDE = 128  # below this the threads' start-up costs more than the sweep


@dataclass(frozen=True)
class Stencil:
    side: int
    diag: float
    off: float

    def grid(self, vector: np.ndarray) -> np.ndarray:
        """Row-major interior values (index i * side + j) -> padded [side + 2, side + 2] grid."""
        out = np.zeros((self.side + 2, self.side + 2))
        out[1:-1, 1:-1] = vector.reshape(self.side, self.side)
        return out


def _half(u, f, diag, off, omega, colour):
    side = u.shape[0] - 2
    for i in nb.prange(1, side + 1):
        for j in range(1 + (i + colour + 1) % 2, side + 1, 2):  # (i + j) % 2 == colour
            neighbours = u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1]
            u[i, j] += omega * ((f[i, j] + off * neighbours) / diag - u[i, j])


def _residual(u, f, diag, off):
    side = u.shape[0] - 2
    total = 0.0
    for i in nb.prange(1, side + 1):
        for j in range(1, side + 1):
            r = f[i, j] - diag * u[i, j] + off * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
            total += r * r
    return np.sqrt(total)


def _solve_factory(parallel: bool):
    half = njit(parallel=parallel)(_half)
    residual = njit(parallel=parallel)(_residual)

    @njit(boundscheck=None)
    def solve(u, f, diag, off, omega, rtol, max_iter):
        initial = residual(u, f, diag, off)
        if initial == 0.0:
            return 0, 0.0
        relative = 1.0
        for it in range(1, max_iter + 1):
            half(u, f, diag, off, omega, 0)
            half(u, f, diag, off, omega, 1)
            relative = residual(u, f, diag, off) / initial
            if relative < rtol:
                return it, relative
        return max_iter, relative

    @njit(boundscheck=None)
    def sweeps(u, f, diag, off, omega, count):
        for _ in range(count):
            half(u, f, diag, off, omega, 0)
            half(u, f, diag, off, omega, 1)

    return solve, sweeps, half


_SERIAL = _solve_factory(parallel=False)
_PARALLEL = _solve_factory(parallel=True)


def kernels(side: int):
    """(solve, sweeps, half) compiled for this grid size."""
    return _PARALLEL if side >= PARALLEL_SIDE else _SERIAL


def solve_redblack(stencil: Stencil, b: np.ndarray, omega: float, *, rtol: float = 1e-8, max_iter: int = 10_000,
                   x0: np.ndarray | None = None) -> SolveResult:
    """Red-black SOR on the stencil system; same stopping rule and result as ``solvers.System.solve``."""
    u = stencil.grid(np.zeros(len(b)) if x0 is None else x0)
    f = stencil.grid(b)
    solve, _, _ = kernels(stencil.side)
    iterations, residual = solve(u, f, float(stencil.diag), float(stencil.off), float(omega), float(rtol),
                                 int(max_iter))
    return SolveResult(u[1:-1, 1:-1].ravel().copy(), int(iterations), bool(residual < rtol), float(residual))


GPU_WORTHWHILE_SIDE = 256  # with --device auto, smaller grids stay on the CPU


def solve_redblack_torch(stencil: Stencil, b: np.ndarray, omega: float, *, device: str, rtol: float = 1e-8,
                         max_iter: int = 10_000, x0: np.ndarray | None = None) -> SolveResult:
    """The same solve with torch tensors on ``device`` (Triton half-sweeps on CUDA, reference elsewhere)."""
    import torch

    from nmkit.kernels.sor_redblack import redblack_sweeps

    u = torch.from_numpy(stencil.grid(np.zeros(len(b)) if x0 is None else x0)).to(device)
    f = torch.from_numpy(stencil.grid(b)).to(device)

    def residual() -> float:
        neighbours = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:]
        r = f[1:-1, 1:-1] - stencil.diag * u[1:-1, 1:-1] + stencil.off * neighbours
        return float(torch.linalg.vector_norm(r))

    initial = residual()
    iterations, relative = 0, 0.0 if initial == 0 else 1.0
    while initial > 0 and iterations < max_iter and relative >= rtol:
        redblack_sweeps(u, f, stencil.diag, stencil.off, omega, 1)
        iterations += 1
        relative = residual() / initial
    return SolveResult(u[1:-1, 1:-1].reshape(-1).cpu().numpy(), iterations, bool(relative < rtol), float(relative))
