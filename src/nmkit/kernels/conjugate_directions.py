"""DCDM's A-orthogonalisation, q <- q - sum_j (q . A p_j) / (p_j . A p_j) p_j, fused for the GPU path.

On CUDA tensors two Triton launches replace 2k separate BLAS-1 calls: one pass reads q once and accumulates every
dot q . A p_j (block partial sums, atomically added), a second pass writes q minus the whole combination of the
p_j. NumPy arrays and CPU tensors take the reference loop.
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import use_triton


def a_orthogonalize(q, previous: list[tuple]) -> object:
    """q A-orthogonalised against ``previous`` = [(p_j, A p_j, p_j . A p_j), ...]."""
    if previous and isinstance(q, torch.Tensor) and use_triton(q):
        from nmkit.kernels.gpu.conjugate_directions import a_orthogonalize_triton

        return a_orthogonalize_triton(q, previous)
    return a_orthogonalize_ref(q, previous)


def a_orthogonalize_ref(q, previous: list[tuple]):
    for p, ap, pap in previous:
        q = q - (q @ ap) / pap * p
    return q
