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

from nmkit.kernels.dispatch import triton_available, use_triton

if triton_available():
    import triton
    import triton.language as tl


def redblack_sweeps(u: torch.Tensor, f: torch.Tensor, diag: float, off: float, omega: float, count: int) -> None:
    """``count`` red-black sweeps in place."""
    half = redblack_half_sweep_triton if use_triton(u, f) else redblack_half_sweep_ref
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


def redblack_half_sweep_triton(u: torch.Tensor, f: torch.Tensor, diag: float, off: float, omega: float,
                               colour: int) -> None:
    """Launch the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1)."""
    if not triton_available():
        raise RuntimeError("triton is not installed")
    width = u.shape[1]
    side = u.shape[0] - 2
    _redblack_kernel[(side,)](u, f, width, float(diag), float(off), float(omega), colour,
                              BLOCK=triton.next_power_of_2(width))


if triton_available():

    @triton.jit
    def _redblack_kernel(u_ptr, f_ptr, width, diag, off, omega, colour, BLOCK: tl.constexpr):
        i = tl.program_id(0) + 1  # interior row
        j = tl.arange(0, BLOCK)
        inside = (j >= 1) & (j < width - 1)
        mine = inside & ((i + j) % 2 == colour)
        row = u_ptr + i * width
        centre = tl.load(row + j, mask=inside, other=0.0)
        neighbours = tl.load(row - width + j, mask=inside, other=0.0) + tl.load(row + width + j, mask=inside,
                                                                                other=0.0)
        neighbours += tl.load(row + j - 1, mask=inside, other=0.0) + tl.load(row + j + 1, mask=inside, other=0.0)
        rhs = tl.load(f_ptr + i * width + j, mask=inside, other=0.0)
        relaxed = (1 - omega) * centre + omega * (rhs + off * neighbours) / diag
        tl.store(row + j, relaxed, mask=mine)
