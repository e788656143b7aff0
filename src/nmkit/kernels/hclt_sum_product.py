"""The HCLT's per-node K x K sum-product, rescaled: out[n] = (rows[n] @ M) / max_j (rows[n] @ M).

In the upward pass M = T_v^T (a child's inside message carried to its parent's latent); in the
outside pass M = T_v. Returning the per-row scale (the log of the max) lets callers keep exact
log-likelihoods while every message stays in [0, 1]. The Triton kernel gives each program a block of
rows; K is padded to a power of two and masked, so any latent size works.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import use_triton


def sum_product(rows: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rescaled rows @ matrix [N, K], log of the scale [N])."""
    if use_triton(rows, matrix):
        from nmkit.kernels.gpu.hclt_sum_product import sum_product_triton

        return sum_product_triton(rows, matrix)
    return sum_product_ref(rows, matrix)


def sum_product_ref(rows: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    product = rows @ matrix
    scale = product.amax(dim=1, keepdim=True)
    return product / scale, torch.log(scale[:, 0])
