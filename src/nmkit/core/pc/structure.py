"""Hidden Chow-Liu tree structure: exact mutual information, maximum spanning tree, centre root.

The Chow-Liu tree is the maximum spanning tree of the pairwise empirical mutual information (Chow and
Liu 1968); HCLT puts a K-state latent under every variable along that tree (Liu and Van den Broeck 2021).
Rooting at the tree's centre minimises its height, which bounds the work per coded variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from numba import prange

from nmkit.core import memory
from nmkit.core.compiled import njit


@dataclass(frozen=True)
class Tree:
    parent: np.ndarray  # [D], -1 at the root
    order: np.ndarray  # [D] pre-order (depth first, children in increasing index)

    @property
    def root(self) -> int:
        return int(np.flatnonzero(self.parent < 0)[0])

    def children(self) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in range(len(self.parent))]
        for node, parent in enumerate(self.parent):
            if parent >= 0:
                kids[parent].append(node)
        return kids


def mutual_information(data: np.ndarray, values: int, pseudocount: float = 1.0) -> np.ndarray:
    """[D, D] empirical mutual information (nats) of discrete columns, with Laplace smoothing: ``pseudocount``
    added to every one of a pair's V^2 joint cells.

    I(X_i; X_j) = H(X_i) + H(X_j) - H(X_i, X_j) of the smoothed joint: per pair, the n samples are counted into a
    V x V scratch table and only the touched cells are summed (the untouched ones all hold the same smoothed
    probability), so time is O(D^2 n) and memory O(V^2) per thread, at any V up to 256 and beyond: no
    (D V)^2 co-occurrence matrix (an earlier version's, 27 GB at D = 64, V = 256).
    """
    columns = np.ascontiguousarray(np.asarray(data).T, dtype=np.int32)  # [D, n]
    return _pair_information(columns, int(values), float(pseudocount))


@njit(parallel=True)
def _pair_information(columns: np.ndarray, values: int, pseudocount: float) -> np.ndarray:
    d, n = columns.shape
    total = n + pseudocount * values * values
    marginal = np.zeros(d)  # H(X_i) of the smoothed marginal p(a) = (c_a + pseudocount V) / total
    for i in prange(d):
        counts = np.zeros(values)
        for s in range(n):
            counts[columns[i, s]] += 1.0
        for a in range(values):
            p = (counts[a] + pseudocount * values) / total
            marginal[i] -= p * np.log(p)
    empty = pseudocount / total  # every untouched joint cell
    info = np.zeros((d, d))
    for i in prange(d):
        table = np.zeros(values * values, np.int64)
        touched = np.empty(n, np.int64)
        for j in range(i + 1, d):
            cells = 0
            for s in range(n):
                cell = columns[i, s] * values + columns[j, s]
                if table[cell] == 0:
                    touched[cells] = cell
                    cells += 1
                table[cell] += 1
            joint = 0.0
            for t in range(cells):
                p = (table[touched[t]] + pseudocount) / total
                joint -= p * np.log(p)
                table[touched[t]] = 0
            joint -= (values * values - cells) * empty * np.log(empty)
            info[i, j] = info[j, i] = marginal[i] + marginal[j] - joint
    return info


def chow_liu_tree(data: np.ndarray, values: int) -> Tree:
    """Maximum spanning tree of the mutual information, rooted at its centre."""
    d = data.shape[1]
    if d == 1:
        return Tree(np.array([-1]), np.array([0]))
    memory.require(32.0 * d * d, f"structure learning over {d:,} values per item (dense D x D mutual information "
                                 "and distances)")
    info = mutual_information(data, values)
    weights = info.max() + 1.0 - info  # positive, so the MST sees every pair; max MI -> min weight
    np.fill_diagonal(weights, 0.0)
    mst = scipy.sparse.csgraph.minimum_spanning_tree(scipy.sparse.csr_array(np.triu(weights)))
    edges = scipy.sparse.coo_array(mst)
    adjacency = scipy.sparse.coo_array((np.ones(2 * len(edges.row)), (np.concatenate([edges.row, edges.col]),
                                                                        np.concatenate([edges.col, edges.row]))),
                                       shape=(d, d)).tocsr()
    distances = scipy.sparse.csgraph.shortest_path(adjacency, unweighted=True)
    root = int(np.argmin(distances.max(axis=1)))  # the centre: smallest eccentricity
    return rooted(adjacency, root)


def rooted(adjacency: scipy.sparse.csr_array, root: int) -> Tree:
    d = adjacency.shape[0]
    parent = np.full(d, -1)
    order = []
    stack = [root]
    seen = np.zeros(d, bool)
    seen[root] = True
    while stack:
        node = stack.pop()
        order.append(node)
        neighbours = sorted(int(j) for j in adjacency.indices[adjacency.indptr[node]:adjacency.indptr[node + 1]])
        for child in reversed(neighbours):
            if not seen[child]:
                seen[child] = True
                parent[child] = node
                stack.append(child)
    return Tree(parent, np.array(order))
