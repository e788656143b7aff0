"""Red-black SOR half-sweeps for constant-coefficient 5-point operators (the GPU path of relax-sor).

The operator is A = d I - o (sum of the 4 neighbours) on a side x side interior grid with zero
(Dirichlet) boundary; ``u`` and ``f`` are padded [side + 2, side + 2] arrays. A half-sweep of colour
c updates every interior point with (i + j) % 2 == c:
    u_ij <- (1 - omega) u_ij + omega (f_ij + o (u_{i-1,j} + u_{i+1,j} + u_{i,j-1} + u_{i,j+1})) / d.
Points of one colour only read points of the other, so a half-sweep is embarrassingly parallel: the
Triton kernel gives each program one grid row; a full sweep is two launches (red, then black).
"""

from __future__ import annotations

import torch

from nmkit.kernels.dispatch import use_triton


def redblack_sweeps(u: torch.Tensor, f: torch.Tensor, diag: float, off: float, omega: float, count: int) -> None:
    """``count`` red-black sweeps in place."""
    half = redblack_half_sweep_ref
    if use_triton(u, f):
        from nmkit.kernels.gpu.sor_redblack import redblack_half_sweep_triton as half
    for _ in range(count):
        half(u, f, diag, off, omega, 0)
        half(u, f, diag, off, omega, 1)


def redblack_half_sweep_ref(u: torch.Tensor, f: torch.Tensor, diag: float, off: float, omega: float,
                            colour: int) -> None:
    """PyTorch reference: the whole colour at once with slices and a parity mask."""
    side = u.shape[0] - 2
    rows = torch.arange(1, side + 1, device=u.device).view(-1, 1)
    cols = torch.arange(1, side + 1, device=u.device).view(1, -1)
    mask = (rows + cols) % 2 == colour
    neighbours = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:]
    relaxed = (1 - omega) * u[1:-1, 1:-1] + omega * (f[1:-1, 1:-1] + off * neighbours) / diag
    u[1:-1, 1:-1] = torch.where(mask, relaxed, u[1:-1, 1:-1])
