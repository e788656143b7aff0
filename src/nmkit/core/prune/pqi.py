"""PQ Index and the SAP rule (Diao et al., "Pruning Deep Neural Networks from a Sparsity Perspective",
ICLR 2023, Eq. 1 and Alg. 1).

    I_{p,q}(w) = 1 - d^{1/q - 1/p} ||w||_p / ||w||_q          over the d unpruned entries, 0 < p < q
    r_t = ceil(d (1 + eta_r)^{-q/(q-p)} (1 - I)^{q p/(q-p)})   lower bound on the weights to keep
    c_t = floor(d min(gamma (1 - r_t / d), beta))              weights to prune this iteration
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nmkit.kernels.magnitude_histogram import HALF_DTYPES, half_histogram

CHUNK = 1 << 22
"""Entries per float64 slice when summing powers."""


@dataclass(frozen=True)
class PowerSums:
    """(non-zeros, sum |w|^p, sum |w|^q) of some weights: what the PQ Index needs, added tensor by tensor."""

    count: int = 0
    sum_p: float = 0.0
    sum_q: float = 0.0

    def __add__(self, other: PowerSums) -> PowerSums:
        return PowerSums(self.count + other.count, self.sum_p + other.sum_p, self.sum_q + other.sum_q)

    def index(self, p: float = 0.5, q: float = 1.0) -> float:
        """I_{p,q} = 1 - (mean |w|^p)^{1/p} / (mean |w|^q)^{1/q} (Eq. 1), 0 for no non-zero weight."""
        if self.count == 0:
            return 0.0
        mean_p = (self.sum_p / self.count) ** (1 / p)
        mean_q = (self.sum_q / self.count) ** (1 / q)
        return max(1 - mean_p / mean_q, 0.0)


def pq_index(weights: torch.Tensor | list[torch.Tensor], p: float = 0.5, q: float = 1.0) -> float:
    """I_{p,q} over the non-zero entries (of every tensor in a list, as if concatenated, without the copy): 0 when
    they are all equal in magnitude, at most 1 - d^{1/q-1/p}."""
    tensors = weights if isinstance(weights, list | tuple) else [weights]
    return sum((power_sums(t, p, q) for t in tensors), PowerSums()).index(p, q)


def power_sums(weights: torch.Tensor, p: float = 0.5, q: float = 1.0) -> PowerSums:
    """The :class:`PowerSums` of one tensor, in float64 over slices of at most CHUNK entries (so a billion-weight
    tensor needs no float64 copy of itself); a 16-bit tensor's from the histogram of its magnitudes."""
    if weights.dtype in HALF_DTYPES:
        return _half_power_sums(weights, p, q)
    flat, total = weights.detach().reshape(-1), PowerSums()
    for start in range(0, flat.numel(), CHUNK):
        magnitudes = flat[start:start + CHUNK]
        magnitudes = magnitudes[magnitudes != 0].abs().to(torch.float64)
        total = total + PowerSums(magnitudes.numel(), float(_power(magnitudes, p).sum()),
                                  float(_power(magnitudes, q).sum()))
    return total


def _power(magnitudes: torch.Tensor, exponent: float) -> torch.Tensor:
    return magnitudes if exponent == 1 else magnitudes.sqrt() if exponent == 0.5 else magnitudes.pow(exponent)


def _half_power_sums(weights: torch.Tensor, p: float, q: float) -> PowerSums:
    return histogram_power_sums(half_histogram(weights, absolute=True), weights.dtype, p, q)


def histogram_power_sums(counts: torch.Tensor, dtype: torch.dtype, p: float = 0.5, q: float = 1.0) -> PowerSums:
    """The :class:`PowerSums` of 16-bit weights (``dtype``) from the :func:`half_histogram` of their magnitudes."""
    present = counts.nonzero().view(-1)
    present = present[present > 0]  # bin 0 holds the zeros
    magnitudes = present.to(torch.int16).view(dtype).to(torch.float64)
    weight = counts[present].to(torch.float64)
    return PowerSums(int(counts[present].sum()), float((weight * magnitudes.pow(p)).sum()),
                     float((weight * magnitudes.pow(q)).sum()))


def sap_prune_count(remaining: int, index: float, *, p: float = 0.5, q: float = 1.0, eta_r: float = 0.0,
                    gamma: float = 1.0, beta: float = 0.9) -> int:
    """c_t: how many of the ``remaining`` weights one SAP iteration prunes, given their PQ Index."""
    if remaining == 0:
        return 0
    keep = math.ceil(remaining * (1 + eta_r) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p)))
    return math.floor(min(gamma * (remaining - keep), beta * remaining))
