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
    """[D, D] empirical mutual information (nats) of discrete columns, with Laplace smoothing."""
    n, d = data.shape
    onehot = np.zeros((n, d * values))
    onehot[np.repeat(np.arange(n), d), (np.arange(d) * values + data).ravel()] = 1.0
    joint = (onehot.T @ onehot).reshape(d, values, d, values).transpose(0, 2, 1, 3) + pseudocount
    joint /= joint.sum(axis=(2, 3), keepdims=True)
    marginal = joint.sum(axis=3)  # [D, D, V]: p(x_i) from each pair
    left, right = marginal, joint.sum(axis=2)
    ratio = joint / (left[..., :, None] * right[..., None, :])
    info = np.sum(joint * np.log(ratio), axis=(2, 3))
    np.fill_diagonal(info, 0.0)
    return info


def chow_liu_tree(data: np.ndarray, values: int) -> Tree:
    """Maximum spanning tree of the mutual information, rooted at its centre."""
    d = data.shape[1]
    if d == 1:
        return Tree(np.array([-1]), np.array([0]))
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
