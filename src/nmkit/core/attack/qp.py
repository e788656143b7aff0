"""QuadAttacK's QP: project penultimate features onto the polytope where the last linear layer ranks the
targets first, in order, by a margin (Paniagua, Grainger and Wu, "QuadAttacK", 2023, Sec. 3):

    z* = argmin ||z - z0||^2  s.t.  (A z + b)_{t_i} - (A z + b)_{t_{i+1}} >= m   (i < K)
                                     (A z + b)_{t_K} - (A z + b)_j       >= m   (j not a target)

Written as G z >= h, the projection's dual is the bound-constrained QP
    min_{lambda >= 0} 1/2 lambda^T (G G^T) lambda - lambda^T (h - G z0),   z* = z0 + G^T lambda,
solved for a whole batch at once by the Lawson-Hanson active-set method (the NNLS algorithm carried to
a QP): a free set grows by the most violated constraint; a step back keeps every multiplier >= 0.
Each instance stops when its KKT conditions hold; all linear algebra is batched torch (CPU or GPU).
"""

from __future__ import annotations

import torch

RIDGE = 1e-10  # keeps G_P G_P^T invertible when constraint rows are dependent


def ordered_topk_constraints(weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                             margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """G [B, C-1, d] and h [B, C-1] such that G z >= h is the ordered top-K polytope for each row of targets."""
    batch, k = targets.shape
    classes = weight.shape[0]
    others = torch.ones(batch, classes, dtype=torch.bool, device=weight.device)
    others.scatter_(1, targets, False)
    rest = torch.nonzero(others)[:, 1].view(batch, classes - k)
    upper = torch.cat([targets[:, :-1], targets[:, -1:].expand(-1, classes - k)], dim=1)  # must stay above
    lower = torch.cat([targets[:, 1:], rest], dim=1)
    g = weight[upper] - weight[lower]
    h = margin - (bias[upper] - bias[lower])
    return g, h


def project(z0: torch.Tensor, g: torch.Tensor, h: torch.Tensor, *, tol: float = 1e-9,
            max_iter: int | None = None) -> torch.Tensor:
    """Euclidean projection of each z0 [B, d] onto {z : G z >= h} (G [B, R, d], h [B, R]).

    G G^T is never formed: gradients use G (G^T lambda), and each step solves only the free rows'
    system, padded to the largest free set in the batch (small next to R when most classes are inactive).
    """
    batch, rows, _ = g.shape
    q = h - (g @ z0.unsqueeze(-1)).squeeze(-1)
    lam = torch.zeros(batch, rows, dtype=z0.dtype, device=z0.device)
    free = torch.zeros(batch, rows, dtype=torch.bool, device=z0.device)
    scale = 1.0 + q.abs().amax(1, keepdim=True)
    for _ in range(max_iter or 3 * rows + 10):
        gradient = q - _times_gram(g, lam)  # negative gradient of the dual
        candidates = ~free & (gradient > tol * scale)
        working = candidates.any(1)
        if not working.any():
            break
        entering = torch.where(candidates, gradient, torch.full_like(gradient, -torch.inf)).argmax(1)
        free[working, entering[working]] = True
        for _ in range(rows + 1):  # inner loop: keep the multipliers of the free set positive
            s = _solve_free(g, q, free)
            blocking = free & (s <= 0) & working.unsqueeze(1)
            stepping = blocking.any(1)
            accept = working & ~stepping
            lam = torch.where(accept.unsqueeze(1), s, lam)
            if not stepping.any():
                break
            ratio = torch.where(blocking, lam / (lam - s), torch.full_like(lam, torch.inf)).amin(1, keepdim=True)
            stepped = lam + ratio * (s - lam)
            lam = torch.where(stepping.unsqueeze(1), stepped, lam)
            free = free & ~(stepping.unsqueeze(1) & (lam <= tol * scale))
            lam = torch.where(free, lam, torch.zeros_like(lam))
            working = stepping
    return z0 + (g.transpose(1, 2) @ lam.unsqueeze(-1)).squeeze(-1)


def _times_gram(g: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """(G G^T) lambda without forming G G^T."""
    return (g @ (g.transpose(1, 2) @ lam.unsqueeze(-1))).squeeze(-1)


def _solve_free(g: torch.Tensor, q: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """Solve G_F G_F^T s_F = q_F with s = 0 outside the free set F, for every instance at once."""
    counts = free.sum(1)
    width = max(int(counts.max()), 1)
    index = torch.argsort((~free).to(torch.int8), dim=1, stable=True)[:, :width]  # free rows first
    valid = torch.arange(width, device=g.device) < counts.unsqueeze(1)
    rows = g.gather(1, index.unsqueeze(-1).expand(-1, -1, g.shape[2])) * valid.unsqueeze(-1)
    eye = torch.eye(width, dtype=g.dtype, device=g.device)
    system = rows @ rows.transpose(1, 2) + torch.where(valid.unsqueeze(2), RIDGE, 1.0) * eye
    solution = torch.linalg.solve(system, q.gather(1, index) * valid)
    return torch.zeros_like(q).scatter(1, index, solution * valid)
