"""The HCLT as a latent tree: p(x) = sum_z pi(z_root) prod_v p(x_v | z_v) prod_(u -> c) p(z_c | z_u).

Parameters: ``prior`` [K], ``transition`` [D, K, K] (row z_parent -> column z_child; unused at the root)
and ``emission`` [D, K, V]. As a probabilistic circuit this is the HCLT of Liu and Van den Broeck (2021):
each sum node is a latent state, each product node joins a variable's leaf with its children's sums.
The upward (inside) pass gives log p(x); the downward (outside) pass gives the flows that EM uses.
Messages are rescaled per item and per node, so nothing underflows at any depth.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.pc.structure import Tree
from nmkit.core.pc.transform import TRANSFORMS

BLOCK_BYTES = 128 << 20
FORMAT = 2  # 2 adds the transform; format 1 files (no transform) still load


@dataclass
class HCLT:
    tree: Tree
    prior: np.ndarray
    transition: np.ndarray
    emission: np.ndarray
    transform: str = "none"  # what the data goes through before the circuit sees it (pc.transform)

    @property
    def variables(self) -> int:
        return self.emission.shape[0]

    @property
    def latents(self) -> int:
        return self.emission.shape[1]

    @property
    def values(self) -> int:
        return self.emission.shape[2]

    @classmethod
    def random(cls, tree: Tree, latents: int, values: int, rng: np.random.Generator, transform: str = "none") -> HCLT:
        d = len(tree.parent)
        dirichlet = lambda *shape: _normalise(rng.gamma(1.0, 1.0, shape))  # noqa: E731
        return cls(tree, dirichlet(latents), dirichlet(d, latents, latents), dirichlet(d, latents, values), transform)

    def fingerprint(self) -> bytes:
        digest = hashlib.sha256(self.transform.encode() if self.transform != "none" else b"")
        for array in (self.tree.parent, self.tree.order, self.prior, self.transition, self.emission):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.digest()

    def parameters(self) -> int:
        d, k, v = self.emission.shape
        return k - 1 + (d - 1) * k * (k - 1) + d * k * (v - 1)

    # -- inference --------------------------------------------------------------------------------

    def log_likelihood(self, data: np.ndarray) -> np.ndarray:
        """log p(x) in nats for each row of ``data`` [N, D] (in blocks of ``block_items`` rows)."""
        step = self.block_items()
        return np.concatenate([self._inside(data[i:i + step])[2] for i in range(0, len(data), step)] or [[]])

    def block_items(self) -> int:
        """Items per pass: the [D, items, K] message arrays (three at once in the E-step) stay near BLOCK_BYTES."""
        return max(1, BLOCK_BYTES // (8 * self.variables * self.latents))

    def log_likelihood_torch(self, data, device: str = "cpu"):
        """log p(x) with torch tensors on ``device``: the same upward pass, with each edge's K x K
        sum-product done by ``kernels.hclt_sum_product`` (Triton on CUDA)."""
        import torch

        from nmkit.kernels.hclt_sum_product import sum_product

        x = torch.as_tensor(np.asarray(data), device=device, dtype=torch.long)
        emission = torch.as_tensor(self.emission, device=device)
        transition_t = torch.as_tensor(self.transition, device=device).transpose(1, 2).contiguous()
        kids = self.tree.children()
        up: dict[int, torch.Tensor] = {}
        log_scale = torch.zeros(len(x), dtype=emission.dtype, device=device)
        for v in self.tree.order[::-1]:
            message = emission[v][:, x[:, v]].T.contiguous()
            for c in kids[v]:
                message = message * up.pop(c)
            if self.tree.parent[v] >= 0:
                up[v], scale = sum_product(message, transition_t[v])
            else:
                up[v], scale = sum_product(message, torch.as_tensor(self.prior, device=device)[:, None])
            log_scale = log_scale + scale
        return (log_scale + torch.log(up[self.tree.root][:, 0])).cpu().numpy()

    def _inside(self, data: np.ndarray):
        n = len(data)
        kids = self.tree.children()
        inside = np.empty((self.variables, n, self.latents))
        up = np.empty((self.variables, n, self.latents))
        log_scale = np.zeros(n)
        for v in self.tree.order[::-1]:  # children before parents
            message = self.emission[v][:, data[:, v]].T.copy()
            for c in kids[v]:
                message *= up[c]
            scale = message.sum(axis=1, keepdims=True)
            inside[v] = message / scale
            log_scale += np.log(scale[:, 0])
            if self.tree.parent[v] >= 0:
                up[v] = inside[v] @ self.transition[v].T  # sum over z_v of T[z_parent, z_v] inside[z_v]
        root = self.tree.root
        evidence = inside[root] @ self.prior
        return inside, up, log_scale + np.log(evidence)

    def expected_counts(self, data: np.ndarray):
        """EM's E-step: expected prior, transition and emission counts, and the data log-likelihood."""
        inside, up, log_likelihood = self._inside(data)
        n = len(data)
        prior_counts = np.zeros(self.latents)
        transition_counts = np.zeros_like(self.transition)
        emission_counts = np.zeros_like(self.emission)
        outside = np.empty_like(inside)
        root = self.tree.root
        outside[root] = np.broadcast_to(self.prior, (n, self.latents))
        kids = self.tree.children()
        for v in self.tree.order:  # parents before children
            belief = outside[v] * inside[v]
            posterior = belief / belief.sum(axis=1, keepdims=True)
            emission_counts[v] += _counts_by_value(data[:, v], posterior, self.values)
            if v == root:
                prior_counts += posterior.sum(axis=0)
            base = outside[v] * self.emission[v][:, data[:, v]].T
            for c, without_c in zip(kids[v], _leave_one_out(base, [up[c] for c in kids[v]]), strict=True):
                norm = (without_c * up[c]).sum(axis=1, keepdims=True)
                transition_counts[c] += self.transition[c] * ((without_c / norm).T @ inside[c])
                message = without_c @ self.transition[c]
                outside[c] = message / message.sum(axis=1, keepdims=True)
        return prior_counts, transition_counts, emission_counts, float(log_likelihood.sum())

    # -- learning ---------------------------------------------------------------------------------

    def em_step(self, data: np.ndarray, *, step: float = 1.0, pseudocount: float = 0.1, smoothing: float = 0.0,
                weight: float = 1.0) -> float:
        """theta <- (1 - step) theta + step normalise(counts + prior counts); returns the E-step log-likelihood.

        The prior counts (a Dirichlet prior's, so the M-step is a MAP estimate) are ``pseudocount`` in every cell
        plus, for the emissions, ``smoothing`` pseudo-observations shaped as the discretised Gaussian with the
        row's own mean and variance (``gaussian_shape``): grey levels next to observed ones gain mass, which a
        categorical leaf cannot learn from few items. ``weight`` is the batch's share of the data set, so a
        mini-batch adds that share of the prior and a full pass adds it once."""
        block = self.block_items()
        blocks = [self.expected_counts(data[i:i + block]) for i in range(0, len(data), block)]
        prior, transition, emission, log_likelihood = (sum(parts) for parts in zip(*blocks, strict=True))
        if smoothing > 0:
            emission = emission + smoothing * weight * gaussian_shape(emission)
        for name, counts in (("prior", prior), ("transition", transition), ("emission", emission)):
            setattr(self, name, (1 - step) * getattr(self, name) + step * _normalise(counts + pseudocount * weight))
        return log_likelihood

    # -- storage ----------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        arrays = {"format": np.array(FORMAT), "parent": self.tree.parent, "order": self.tree.order,
                  "prior": self.prior, "transition": self.transition, "emission": self.emission,
                  "transform": np.array(TRANSFORMS.index(self.transform))}  # saved as its index: numbers only
        io.atomic_write(path, lambda fh: np.savez(fh, **arrays))

    @classmethod
    def load(cls, path: Path) -> HCLT:
        arrays = io.load_npz(path)
        if "format" not in arrays or arrays["format"].size != 1 or int(arrays["format"]) not in (1, FORMAT):
            raise InputError(f"model {path}: not an nmkit HCLT model of format 1 or {FORMAT}")
        code = arrays.get("transform", np.array(0))
        if code.size != 1 or code.dtype.kind not in "iu" or not 0 <= int(code) < len(TRANSFORMS):
            raise InputError(f"model {path}: unknown transform (expected the index of one of {', '.join(TRANSFORMS)})")
        transform = TRANSFORMS[int(code)]
        missing = [k for k in ("parent", "order", "prior", "transition", "emission") if k not in arrays]
        if missing:
            raise InputError(f"model {path}: lacks the arrays {', '.join(missing)}")
        _check_shapes(arrays, f"model {path}")
        return cls(Tree(arrays["parent"].astype(np.int64), arrays["order"].astype(np.int64)), arrays["prior"],
                   arrays["transition"], arrays["emission"], transform)


def _check_shapes(arrays: dict[str, np.ndarray], name: str) -> None:
    """A saved model must be a tree in pre-order with distributions of matching shapes (a crafted file must not
    send the decoder into a cycle or out of bounds)."""
    emission, transition, prior = arrays["emission"], arrays["transition"], arrays["prior"]
    parent, order = arrays["parent"], arrays["order"]
    if emission.ndim != 3 or min(emission.shape) < 1:
        raise InputError(f"{name}: emission must be [variables, latents, values]")
    d, k, _ = emission.shape
    if prior.shape != (k,) or transition.shape != (d, k, k) or parent.shape != (d,) or order.shape != (d,) or \
            parent.dtype.kind not in "iu" or order.dtype.kind not in "iu":
        raise InputError(f"{name}: prior, transition, parent and order do not fit emission's shape {emission.shape}")
    if not np.array_equal(np.sort(order), np.arange(d)) or np.count_nonzero(parent < 0) != 1 or parent.max() >= d:
        raise InputError(f"{name}: parent and order do not describe a tree over {d} variables")
    position = np.empty(d, np.int64)
    position[order] = np.arange(d)
    child = parent >= 0
    if parent[order[0]] >= 0 or np.any(position[parent[child]] >= position[child]):
        raise InputError(f"{name}: order is not a pre-order of the tree (or the tree has a cycle)")
    if not all(np.isfinite(a).all() and a.min() >= 0 for a in (prior, transition, emission)):
        raise InputError(f"{name}: probabilities must be finite and non-negative")


def _counts_by_value(column: np.ndarray, weights: np.ndarray, values: int) -> np.ndarray:
    """[K, V]: the rows of ``weights`` [N, K] summed by the value each item holds in ``column`` (a sparse one-hot
    product, O(N K) at any V)."""
    onehot = scipy.sparse.csr_array((np.ones(len(column)), (column, np.arange(len(column)))),
                                    shape=(values, len(column)))
    return (onehot @ weights).T


def gaussian_shape(counts: np.ndarray) -> np.ndarray:
    """[..., V] rows of the discretised Gaussian N(mean, variance + 1/4) of each row of ``counts`` over the values
    0..V-1 (bin x holds (x - 1/2, x + 1/2], the end bins hold the tails): what the counts look like with their
    shape kept and their gaps filled."""
    from scipy.special import ndtr

    values = np.arange(counts.shape[-1], dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True) + 1e-300
    mean = (counts * values).sum(axis=-1, keepdims=True) / total
    spread = np.sqrt((counts * (values - mean) ** 2).sum(axis=-1, keepdims=True) / total + 0.25)
    edges = np.concatenate([[-np.inf], values[:-1] + 0.5, [np.inf]])
    cdf = ndtr((edges - mean) / spread)
    return _normalise(np.diff(cdf, axis=-1))


def _leave_one_out(base: np.ndarray, factors: list[np.ndarray]) -> list[np.ndarray]:
    """base * prod_{j != i} factors[j] for every i, by prefix and suffix products (no division, which
    would turn underflowed entries into wrong zeros); rows are rescaled as they go."""
    if not factors:
        return []
    prefix, suffix = [base], [np.ones_like(base)]
    for factor in factors[:-1]:
        prefix.append(_rescale(prefix[-1] * factor))
    for factor in factors[:0:-1]:
        suffix.append(_rescale(suffix[-1] * factor))
    return [_rescale(left * right) for left, right in zip(prefix, suffix[::-1], strict=True)]


def _rescale(rows: np.ndarray) -> np.ndarray:
    return rows / rows.max(axis=1, keepdims=True)


def _normalise(counts: np.ndarray) -> np.ndarray:
    """Rows summing to 1; a row with no mass at all (a latent state nothing reached) becomes uniform."""
    total = counts.sum(axis=-1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / counts.shape[-1])
    return np.divide(counts, total, out=uniform, where=total > 0)
