"""Built-in SPD systems on 2-D/3-D grids: Dirichlet Poisson on a box, optionally with solid obstacles and a
variable diffusion coefficient, and right-hand-side families.

The operator is the finite-volume diffusion stencil: a face between two fluid cells carries the harmonic mean of
their coefficients, a face on the box boundary carries the cell's own (Dirichlet, u = 0 outside), a face touching a
solid cell carries nothing (Neumann, as at the walls of a smoke simulation). Solid cells keep an identity row, so
every vector stays grid-shaped (what the network sees) and the solids stay at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from nmkit.core import memory
from nmkit.core.errors import InputError


@dataclass
class GridProblem:
    """An SPD operator on a grid of ``shape`` cells (row-major), with a boolean ``fluid`` mask."""

    matrix: sp.csr_matrix
    shape: tuple[int, ...]
    fluid: np.ndarray

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def diffusion_operator(coefficient: np.ndarray, fluid: np.ndarray) -> sp.csr_matrix:
    """The finite-volume matrix of -div(k grad u) with unit spacing (see the module docstring)."""
    shape = coefficient.shape
    index = np.arange(coefficient.size).reshape(shape)
    k = np.where(fluid, coefficient, 0.0)
    diagonal = np.zeros(shape)
    rows, cols, values = [], [], []
    for axis in range(len(shape)):
        low = [slice(None)] * len(shape)
        high = [slice(None)] * len(shape)
        low[axis], high[axis] = slice(0, -1), slice(1, None)
        a, b = k[tuple(low)], k[tuple(high)]
        face = np.where((a > 0) & (b > 0), 2 * a * b / np.maximum(a + b, 1e-300), 0.0)
        diagonal[tuple(low)] += face
        diagonal[tuple(high)] += face
        rows += [index[tuple(low)].ravel(), index[tuple(high)].ravel()]
        cols += [index[tuple(high)].ravel(), index[tuple(low)].ravel()]
        values += [-face.ravel(), -face.ravel()]
        for edge in (0, -1):  # Dirichlet faces on the box boundary
            border = [slice(None)] * len(shape)
            border[axis] = edge
            diagonal[tuple(border)] += k[tuple(border)]
    diagonal = np.where(fluid, diagonal, 1.0)
    rows.append(index.ravel())
    cols.append(index.ravel())
    values.append(diagonal.ravel())
    matrix = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(coefficient.size, coefficient.size))
    matrix.eliminate_zeros()
    return matrix


def obstacle_mask(shape: tuple[int, ...], obstacle: str) -> np.ndarray:
    """Fluid cells: everywhere (none), or outside a centred sphere of radius n/5 (sphere), or a centred box of
    side n/3 (box)."""
    grid = np.meshgrid(*[(np.arange(n) + 0.5) / n - 0.5 for n in shape], indexing="ij")
    if obstacle == "none":
        return np.ones(shape, dtype=bool)
    if obstacle == "sphere":
        return sum(g**2 for g in grid) > 0.2**2
    return ~np.all([np.abs(g) < 1 / 6 for g in grid], axis=0)


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator, width: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=width * min(shape), mode="wrap")
    return field / (np.abs(field).max() + 1e-300)


BYTES_PER_CELL = 400
"""Memory per grid cell while building and solving: the stencil matrix (7 entries x 12 bytes in 3-D), the
preconditioners' copies and a dozen float64 vectors."""


def build(problem: str, n: int, obstacle: str = "none", contrast: float = 10.0, seed: int = 0) -> GridProblem:
    """poisson2d / poisson3d (unit coefficient) or diffusion2d / diffusion3d (a smooth coefficient spanning a
    factor ``contrast``) on n^dim cells, with an optional obstacle."""
    dim = 3 if problem.endswith("3d") else 2
    memory.require(float(n) ** dim * BYTES_PER_CELL, f"{problem} with n = {n} ({n}^{dim} cells)")
    shape = (n,) * dim
    fluid = obstacle_mask(shape, obstacle)
    coefficient = np.ones(shape)
    if problem.startswith("diffusion"):
        coefficient = contrast ** (0.5 * (1 + smooth_field(shape, np.random.default_rng(seed + 7919), 0.1)))
    return GridProblem(diffusion_operator(coefficient, fluid), shape, fluid)


def right_hand_side(problem: GridProblem, kind: str, rng: np.random.Generator) -> np.ndarray:
    """random (white noise), smooth (a low-pass field) or divergence (of a random smooth velocity field, as a
    pressure projection sees), zero on solids."""
    if kind == "random":
        b = rng.standard_normal(problem.shape)
    elif kind == "smooth":
        b = smooth_field(problem.shape, rng, 0.08)
    else:
        velocity = [smooth_field(problem.shape, rng, 0.05) for _ in problem.shape]
        b = sum(np.diff(v, axis=axis, prepend=0.0) for axis, v in enumerate(velocity))
    b = np.where(problem.fluid, b, 0.0).ravel()
    return b / np.linalg.norm(b)


def from_matrix(matrix: sp.spmatrix, shape: tuple[int, ...] | None, source: str) -> GridProblem:
    """A user's matrix: square, symmetric (checked), positive diagonal (a cheap necessary condition for SPD)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    rows, cols = matrix.shape
    if rows != cols:
        raise InputError(f"matrix {source}: must be square, found {rows} x {cols}")
    asymmetry = abs(matrix - matrix.T).max() if matrix.nnz else 0.0
    if asymmetry > 1e-10 * max(abs(matrix).max(), 1e-300):
        raise InputError(f"matrix {source}: must be symmetric (max |A - A^T| = {asymmetry:.3g})")
    if np.any(matrix.diagonal() <= 0):
        raise InputError(f"matrix {source}: has a non-positive diagonal entry, so it is not positive definite")
    shape = shape or (rows,)
    if int(np.prod(shape)) != rows:
        raise InputError(f"matrix {source}: {rows} unknowns do not fit grid {'x'.join(map(str, shape))}")
    return GridProblem(matrix, tuple(shape), np.ones(shape, dtype=bool))
