"""PQ Index and the SAP rule (Diao et al., "Pruning Deep Neural Networks from a Sparsity Perspective",
ICLR 2023, Eq. 1 and Alg. 1).

    I_{p,q}(w) = 1 - d^{1/q - 1/p} ||w||_p / ||w||_q          over the d unpruned entries, 0 < p < q
    r_t = ceil(d (1 + eta_r)^{-q/(q-p)} (1 - I)^{q p/(q-p)})   lower bound on the weights to keep
    c_t = floor(d min(gamma (1 - r_t / d), beta))              weights to prune this iteration
"""

from __future__ import annotations

import math

import torch


def pq_index(weights: torch.Tensor, p: float = 0.5, q: float = 1.0) -> float:
    """I_{p,q} of the non-zero entries: 0 when they are all equal in magnitude, at most 1 - d^{1/q-1/p}."""
    magnitudes = weights.detach().reshape(-1).abs().to(torch.float64)
    magnitudes = magnitudes[magnitudes > 0]
    if magnitudes.numel() == 0:
        return 0.0
    mean_p = magnitudes.pow(p).mean().pow(1 / p)
    mean_q = magnitudes.pow(q).mean().pow(1 / q)
    return max(float(1 - mean_p / mean_q), 0.0)


def sap_prune_count(remaining: int, index: float, *, p: float = 0.5, q: float = 1.0, eta_r: float = 0.0,
                    gamma: float = 1.0, beta: float = 0.9) -> int:
    """c_t: how many of the ``remaining`` weights one SAP iteration prunes, given their PQ Index."""
    if remaining == 0:
        return 0
    keep = math.ceil(remaining * (1 + eta_r) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p)))
    return math.floor(min(gamma * (remaining - keep), beta * remaining))
