"""Sequences of SPD systems A_t x = b_t with a scalar context c_t (Khodak et al., ICLR 2024, Sec. 5).

* ``shifted-laplacian``: A_t = L + c_t I, L the 5-point Laplacian on a 10 x 10 interior grid (diagonal 4,
  MATLAB's delsq(numgrid('S', 12))), c_t = -0.15 + 0.6 Beta(0.5, 1.5) ("high-variance") or
  -0.15 + 0.6 Beta(2, 6) ("low-variance", as ``scripts/learning.m``), b_t ~ truncated normal; context c_t.
* ``heat2d``: Crank-Nicolson steps of u_t = kappa(t) Lap u + f on the unit square (Dirichlet), kappa(t) =
  max(0.1 sin 2 pi t, -10 sin 2 pi t), a moving Gaussian bump as forcing; A_t = I - kappa dt / 2 Lap_h,
  warm start at the previous step's solution; context kappa(t).
* ``files``: a folder of ``A_<t>.mtx`` or ``A_<t>.npz`` (``scipy.sparse.save_npz``) and ``b_<t>.npy`` (optional
  ``context.npy``), or one ``.npz`` holding ``b_<t>``, optional ``context``, and each ``A_<t>`` either dense or as
  a CSR stack: ``A_<t>.data``, ``A_<t>.indices``, ``A_<t>.indptr``, ``A_<t>.shape`` (a 400-system 15 x 15
  sequence is 162 MB dense, 2 MB sparse). The systems run in the order of t, which must count up without gaps
  from any start (a gap is a missing file, so it is refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse
import scipy.sparse.linalg

from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.sor.stencil import Stencil


@dataclass
class Instance:
    a: scipy.sparse.csr_array
    b: np.ndarray
    context: float
    x0: np.ndarray | None = None
    omega_star: float | None = None  # asymptotically optimal SOR omega, where known in closed form
    stencil: Stencil | None = None  # set when A is a constant-coefficient 5-point operator


def laplacian_2d(side: int) -> scipy.sparse.csr_array:
    """5-point Laplacian with diagonal 4 on a side x side interior grid (Dirichlet)."""
    line = scipy.sparse.diags_array([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], offsets=[-1, 0, 1])
    eye = scipy.sparse.identity(side)
    return scipy.sparse.csr_array(scipy.sparse.kron(eye, line) + scipy.sparse.kron(line, eye))


def omega_from_jacobi_radius(beta: float) -> float:
    """omega* = 2 / (1 + sqrt(1 - beta^2)) (Young), beta the Jacobi iteration's spectral radius."""
    return 2.0 / (1.0 + np.sqrt(max(0.0, 1.0 - beta * beta)))


def jacobi_radius(a: scipy.sparse.csr_array) -> float:
    """rho(I - D^-1 A), by symmetric scaling: eigenvalues of D^-1/2 A D^-1/2 lie in [1 - rho, 1 + rho]."""
    scale = scipy.sparse.diags_array(1 / np.sqrt(a.diagonal()))
    s = scipy.sparse.csr_array(scale @ a @ scale)
    if s.shape[0] <= 400:
        eigenvalues = np.linalg.eigvalsh(s.toarray())
        return float(max(abs(1 - eigenvalues[0]), abs(eigenvalues[-1] - 1)))
    high = scipy.sparse.linalg.eigsh(s, k=1, which="LA", return_eigenvectors=False)[0]
    low = scipy.sparse.linalg.eigsh(s, k=1, which="SA", return_eigenvectors=False)[0]
    return float(max(abs(1 - low), abs(high - 1)))


def shifted_laplacian(steps: int, variance: str, rng: np.random.Generator) -> Iterator[Instance]:
    from scipy.stats import truncnorm  # here: ~0.5 s to import, which a user's own sequence never needs

    base = laplacian_2d(10)
    eye = scipy.sparse.identity(100, format="csr")
    cos = np.cos(np.pi / 11)  # largest adjacency eigenvalue of the 10 x 10 grid is 4 cos(pi h)
    for _ in range(steps):
        c = -0.15 + 0.6 * (rng.beta(0.5, 1.5) if variance == "high" else rng.beta(2.0, 6.0))
        b = truncnorm.rvs(-3, 3, size=100, random_state=rng)
        yield Instance(scipy.sparse.csr_array(base + c * eye), b, float(c),
                       omega_star=omega_from_jacobi_radius(4 * cos / (4 + c)), stencil=Stencil(10, 4 + c, 1.0))


def heat2d(steps: int, grid: int, rng: np.random.Generator) -> Iterator[Instance]:
    """Crank-Nicolson on a grid x grid mesh ((grid - 1)^2 unknowns), dt = 5 / steps (as ``h2d.m``)."""
    side, h, dt = grid - 1, 1.0 / grid, 5.0 / steps
    delsq = laplacian_2d(side)  # = -h^2 Lap_h
    eye = scipy.sparse.identity(side * side, format="csr")
    coords = np.arange(1, grid) * h
    x, y = np.meshgrid(coords, coords, indexing="ij")
    u = np.zeros(side * side)
    cos = np.cos(np.pi * h)
    phase = rng.uniform(0, 2 * np.pi)
    for step in range(1, steps + 1):
        t = step * dt
        kappa = max(0.1 * np.sin(2 * np.pi * t), -10 * np.sin(2 * np.pi * t))
        s = 0.5 * kappa * dt / (h * h)
        centre = 0.5 + 0.25 * np.cos(2 * np.pi * t / 5 + phase), 0.5 + 0.25 * np.sin(2 * np.pi * t / 5 + phase)
        forcing = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / 0.01).ravel()
        a = scipy.sparse.csr_array(eye + s * delsq)
        b = u - s * (delsq @ u) + dt * forcing
        yield Instance(a, b, float(kappa), x0=u.copy(), omega_star=omega_from_jacobi_radius(4 * s * cos / (1 + 4 * s)),
                       stencil=Stencil(side, 1 + 4 * s, s))
        u = scipy.sparse.linalg.spsolve(scipy.sparse.csc_matrix(a), b)  # the exact trajectory every policy starts from


def _csr_from(arrays: dict[str, np.ndarray], key: str, path: Path) -> scipy.sparse.csr_array:
    """One system of a CSR stack: ``<key>.data``, ``.indices``, ``.indptr``, ``.shape``, checked for consistency."""
    try:
        data, indices, indptr, shape = (arrays[f"{key}.{part}"] for part in ("data", "indices", "indptr", "shape"))
        rows, cols = (int(v) for v in shape)
        matrix = scipy.sparse.csr_array((data, indices, indptr), shape=(rows, cols))
    except (KeyError, ValueError, TypeError):
        raise InputError(f"sequence {path}: {key} needs consistent arrays {key}.data, .indices, .indptr and .shape "
                         f"(CSR)") from None
    io.check_sparse_structure(matrix, f"sequence {path}: {key}")
    return matrix


def from_files(path: Path) -> list[Instance]:
    """Read a user sequence (see module docstring); the order is that of t in the names."""
    if not path.exists():
        raise InputError(f"sequence {path}: no such file or folder")
    if path.suffix == ".npz":
        arrays = io.load_npz(path)
        matrices = {int(m.group(1)): scipy.sparse.csr_array(v) for k, v in arrays.items()
                    if (m := re.fullmatch(r"A_(\d+)", k))}
        matrices.update({int(m.group(1)): _csr_from(arrays, f"A_{m.group(1)}", path) for k in arrays
                         if (m := re.fullmatch(r"A_(\d+)\.data", k))})
        rhs = {int(m.group(1)): v for k, v in arrays.items() if (m := re.fullmatch(r"b_(\d+)", k))}
        context = arrays.get("context")
    else:
        matrices = {int(m.group(1)): scipy.sparse.csr_array(io.read_matrix_market(p, "sequence matrix"))
                    for p in path.glob("A_*.mtx") if (m := re.fullmatch(r"A_(\d+)\.mtx", p.name))}
        matrices.update({int(m.group(1)): scipy.sparse.csr_array(io.read_sparse_npz(p, "sequence matrix"))
                         for p in path.glob("A_*.npz") if (m := re.fullmatch(r"A_(\d+)\.npz", p.name))})
        rhs = {int(m.group(1)): io.load_npy(p) for p in path.glob("b_*.npy")
               if (m := re.fullmatch(r"b_(\d+)\.npy", p.name))}
        context = io.load_npy(path / "context.npy") if (path / "context.npy").exists() else None
    if not matrices:
        raise InputError(f"sequence {path}: empty (expected A_<t>.mtx and b_<t>.npy, or arrays A_<t>, b_<t>)")
    missing = sorted(set(matrices) ^ set(rhs))
    if missing:
        raise InputError(f"sequence {path}: t = {missing[0]} has a matrix or a right-hand side but not both")
    order = sorted(matrices)
    if order[-1] - order[0] + 1 != len(order):
        missing = next(t for t in range(order[0], order[-1]) if t not in matrices)
        raise InputError(f"sequence {path}: no system t = {missing}; the systems must be numbered without gaps "
                         f"(A_{order[0]}, A_{order[0] + 1}, ...)")
    if context is not None and len(context) != len(order):
        raise InputError(f"sequence {path}: context has {len(context)} values for {len(order)} systems")
    for t in order:
        if np.shape(rhs[t]) != (matrices[t].shape[0],):
            raise InputError(f"sequence {path}: b_{t} has shape {np.shape(rhs[t])}, expected a vector of "
                             f"{matrices[t].shape[0]} entries (A_{t} has {matrices[t].shape[0]} rows)")
    return [Instance(matrices[t], np.asarray(rhs[t], np.float64), float(context[i]) if context is not None else 0.0)
            for i, t in enumerate(order)]
