"""The Triton kernel of ``kernels.hclt_sum_product`` (imported only when CUDA tensors meet it)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


def sum_product_triton(rows: torch.Tensor, matrix: torch.Tensor, block_rows: int = 16
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    rows, matrix = rows.contiguous(), matrix.contiguous()
    n, k = rows.shape
    out = torch.empty_like(rows)
    log_scale = torch.empty(n, dtype=rows.dtype, device=rows.device)
    grid = (triton.cdiv(n, block_rows),)
    _sum_product_kernel[grid](rows, matrix, out, log_scale, n, k, BLOCK_ROWS=block_rows,
                              BLOCK_K=triton.next_power_of_2(k))
    return out, log_scale


@triton.jit
def _sum_product_kernel(rows_ptr, matrix_ptr, out_ptr, log_scale_ptr, n, k, BLOCK_ROWS: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    r = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    i = tl.arange(0, BLOCK_K)
    row_ok = r < n
    k_ok = i < k
    rows = tl.load(rows_ptr + r[:, None] * k + i[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
    matrix = tl.load(matrix_ptr + i[:, None] * k + i[None, :], mask=k_ok[:, None] & k_ok[None, :], other=0.0)
    product = tl.sum(rows[:, :, None] * matrix[None, :, :], axis=1)  # [rows, j] = sum_i rows[., i] M[i, j]
    scale = tl.max(product, axis=1)
    scale = tl.where(row_ok, scale, 1.0)
    tl.store(out_ptr + r[:, None] * k + i[None, :], product / scale[:, None], mask=row_ok[:, None] & k_ok[None, :])
    tl.store(log_scale_ptr + r, tl.log(scale), mask=row_ok)
