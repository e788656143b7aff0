"""IC(0): the Cholesky factor of A restricted to A's own lower-triangular pattern (no fill), as a CG
preconditioner M = L L^T. Exact when the true factor has no fill (tridiagonal A)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nmkit.core.compiled import njit


class IncompleteCholesky:
    def __init__(self, matrix: sp.spmatrix) -> None:
        lower = sp.tril(sp.csr_matrix(matrix), format="csr")
        lower.sort_indices()
        self.indptr, self.indices = lower.indptr, lower.indices
        self.data = _factor(lower.indptr, lower.indices, lower.data.astype(np.float64).copy())

    def solve(self, r: np.ndarray) -> np.ndarray:
        """M^-1 r = L^-T L^-1 r."""
        return _substitute(self.indptr, self.indices, self.data, np.ascontiguousarray(r, dtype=np.float64))


@njit(nogil=False, boundscheck=None)
def _factor(indptr, indices, data):
    for i in range(len(indptr) - 1):
        for p in range(indptr[i], indptr[i + 1]):
            k = indices[p]
            total = 0.0  # sum over j < k of L[i, j] L[k, j], on the shared pattern
            a, b = indptr[i], indptr[k]
            while a < p and b < indptr[k + 1] - 1:
                if indices[a] == indices[b]:
                    total += data[a] * data[b]
                    a += 1
                    b += 1
                elif indices[a] < indices[b]:
                    a += 1
                else:
                    b += 1
            if k < i:
                data[p] = (data[p] - total) / data[indptr[k + 1] - 1]
            else:
                data[p] = np.sqrt(max(data[p] - total, 1e-300))
    return data


@njit(nogil=False, boundscheck=None)
def _substitute(indptr, indices, data, r):
    n = len(indptr) - 1
    y = r.copy()
    for i in range(n):  # L y = r
        for p in range(indptr[i], indptr[i + 1] - 1):
            y[i] -= data[p] * y[indices[p]]
        y[i] /= data[indptr[i + 1] - 1]
    for i in range(n - 1, -1, -1):  # L^T z = y, column by column
        y[i] /= data[indptr[i + 1] - 1]
        for p in range(indptr[i], indptr[i + 1] - 1):
            y[indices[p]] -= data[p] * y[i]
    return y
