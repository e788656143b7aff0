"""PQ Index and the SAP rule (Diao et al., "Pruning Deep Neural Networks from a Sparsity Perspective",
ICLR 2023, Eq. 1 and Alg. 1).

    I_{p,q}(w) = 1 - d^{1/q - 1/p} ||w||_p / ||w||_q          over the d unpruned entries, 0 < p < q
    r_t = ceil(d (1 + eta_r)^{-q/(q-p)} (1 - I)^{q p/(q-p)})   lower bound on the weights to keep
    c_t = floor(d min(gamma (1 - r_t / d), beta))              weights to prune this iteration
"""

from __future__ import annotations

import math

import torch


def pq_index(weights: torch.Tensor | list[torch.Tensor], p: float = 0.5, q: float = 1.0) -> float:
    """I_{p,q} = 1 - (mean |w|^p)^{1/p} / (mean |w|^q)^{1/q} over the non-zero entries (of every tensor in a list,
    as if concatenated, without the copy): 0 when they are all equal in magnitude, at most 1 - d^{1/q-1/p}."""
    count = sum_p = sum_q = 0.0
    for tensor in weights if isinstance(weights, list | tuple) else [weights]:
        n, sp, sq = _power_sums(tensor, p, q)
        count, sum_p, sum_q = count + n, sum_p + sp, sum_q + sq
    if count == 0:
        return 0.0
    mean_p = (sum_p / count) ** (1 / p)
    mean_q = (sum_q / count) ** (1 / q)
    return max(1 - mean_p / mean_q, 0.0)


def _power_sums(weights: torch.Tensor, p: float, q: float) -> tuple[int, float, float]:
    """(non-zeros, sum |w|^p, sum |w|^q) in float64, one tensor-sized temporary at a time."""
    magnitudes = weights.detach().reshape(-1)
    magnitudes = magnitudes[magnitudes != 0].abs().to(torch.float64)
    power = lambda e: magnitudes if e == 1 else magnitudes.sqrt() if e == 0.5 else magnitudes.pow(e)  # noqa: E731
    return magnitudes.numel(), float(power(p).sum(dtype=torch.float64)), float(power(q).sum(dtype=torch.float64))


def sap_prune_count(remaining: int, index: float, *, p: float = 0.5, q: float = 1.0, eta_r: float = 0.0,
                    gamma: float = 1.0, beta: float = 0.9) -> int:
    """c_t: how many of the ``remaining`` weights one SAP iteration prunes, given their PQ Index."""
    if remaining == 0:
        return 0
    keep = math.ceil(remaining * (1 + eta_r) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p)))
    return math.floor(min(gamma * (remaining - keep), beta * remaining))
