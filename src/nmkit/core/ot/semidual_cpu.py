"""The semi-dual's m x n work fused into one pass over the cost, on CPU cores (numba).

For each plan column j (a row of the transposed cost): stream x_i = alpha_i - C_ij, keep the k largest
in a small sorted buffer, project them onto the simplex after scaling by 1 / (gamma b_j), and store
the column's max_Omega value and its k (value, index) pairs. Reading the cost once, instead of the
five m x n passes of the tensor formulation, is what makes a CPU iteration cheap; columns run in
parallel. Same results as ``smooth.semi_dual``'s tensor path (tested to 1e-12); used for k <= MAX_K.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nmkit.core.compiled import njit

MAX_K = 16


@njit(parallel=True)
def _columns(alpha, b, cost_t, gamma, k, values, indices, max_omega):
    batch, n, m = cost_t.shape
    for flat in nb.prange(batch * n):
        p, j = flat // n, flat % n
        top = np.full(k, -np.inf)
        where = np.zeros(k, np.int64)
        row = cost_t[p, j]
        for i in range(m):
            x = alpha[p, i] - row[i]
            if x > top[k - 1]:  # insert, keeping top sorted in decreasing order
                r = k - 1
                while r > 0 and top[r - 1] < x:
                    top[r] = top[r - 1]
                    where[r] = where[r - 1]
                    r -= 1
                top[r] = x
                where[r] = i
        scale = gamma * b[p, j]
        cumulative = 0.0
        theta = 0.0
        for r in range(k):  # simplex threshold on the sorted, scaled values
            cumulative += top[r] / scale
            candidate = (cumulative - 1.0) / (r + 1)
            if top[r] / scale - candidate > 0:
                theta = candidate
        value = 0.0
        for r in range(k):
            y = max(top[r] / scale - theta, 0.0)
            values[p, j, r] = y
            indices[p, j, r] = where[r]
            value += top[r] * y - 0.5 * scale * y * y
        max_omega[p, j] = value


def semi_dual(alpha: np.ndarray, a: np.ndarray, b: np.ndarray, cost_t: np.ndarray, gamma: float, k: int):
    """(objective [batch], gradient [batch, m], plan values [batch, n, k], plan indices [batch, n, k])."""
    batch, n, m = cost_t.shape
    values = np.empty((batch, n, k))
    indices = np.empty((batch, n, k), np.int64)
    max_omega = np.empty((batch, n))
    _columns(alpha, b, cost_t, gamma, k, values, indices, max_omega)
    values *= b[:, :, None]  # plan column t_j = b_j y_j
    objective = (alpha * a).sum(-1) - (b * max_omega).sum(-1)
    grad = a.copy()
    for p in range(batch):
        grad[p] -= np.bincount(indices[p].ravel(), weights=values[p].ravel(), minlength=m)
    return objective, grad, values, indices
