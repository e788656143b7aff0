"""A warm start for large point clouds: solve a subsample, then give every source the potential of its nearest
subsampled source.

Why: the semi-dual's curvature in alpha_i is (1 / gamma) x the number of plan columns source i is active in, zero
for a source no column uses yet. From alpha = 0 most sources start unused, their gradient is a_i alone, and
L-BFGS's one step length (set by the curved coordinates) raises them slowly: the iterations grow with n
(measured: ~1,500 at n = 2,000, ~3,200 at n = 5,000). The Kantorovich potential is a Lipschitz function of the
position, so a subsample's potential, carried to the nearest points, starts nearly every source where it is used.
Applied recursively (each level a quarter of the points) down to COARSE_BELOW.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.spatial

COARSE_FACTOR = 4
"""Each coarser level keeps one point in COARSE_FACTOR (seeded sample)."""
COARSE_BELOW = 2000
"""Clouds of at most this many points start from alpha = 0."""


def warm_start(points, a: np.ndarray, b: np.ndarray,
               solve: Callable[[object, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray | None:
    """Starting potentials [m] for ``points`` (``problems.Points``, weights a [1, m], b [1, n]) from
    ``solve(sub_points, sub_a, sub_b)`` on a subsample, or None when the clouds are small."""
    m, n = len(points.source), len(points.target)
    if max(m, n) <= COARSE_BELOW:
        return None
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(m, max(m // COARSE_FACTOR, 1), replace=False))
    cols = np.sort(rng.choice(n, max(n // COARSE_FACTOR, 1), replace=False))
    if a[:, rows].sum() <= 0 or b[:, cols].sum() <= 0:
        return None  # the sample drew only weightless points
    sub = type(points)(points.source[rows], points.target[cols], points.metric)
    sub_a, sub_b = a[:, rows] / a[:, rows].sum(), b[:, cols] / b[:, cols].sum()
    potential = solve(sub, sub_a, sub_b)
    norm = 1 if points.metric == "cityblock" else 2
    _, nearest = scipy.spatial.cKDTree(sub.source).query(points.source, p=norm)
    return potential[nearest]
