"""M-FAC's static algorithm: OBS pruning with a matrix-free inverse empirical Fisher (Frantar, Kurtic and
Alistarh, NeurIPS 2021, Sec. 3 and Alg. 1).

F = lambda I + (1/m) sum_i g_i g_i^T, inverted by the Sherman-Morrison recurrence (eps = 1/lambda):
    v_i = eps g_i - sum_{j<i} (v_j . g_i / d_j) v_j,   d_i = m + g_i . v_i
    F^-1 x = eps x - sum_j (v_j . x / d_j) v_j,        diag(F^-1) = eps - sum_j v_j^2 / d_j
per contiguous block of the flattened weights (block size 0: one block). A step to sparsity s prunes the
lowest rho_i = w_i^2 / (2 [F^-1]_ii) globally and applies the summed single-weight OBS updates
    dw = -F^-1 sum_{q in Q} (w_q / [F^-1]_qq) e_q.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nmkit.core.prune.masks import Prunable, global_masks


class InverseFisher:
    """The blocked inverse empirical Fisher of gradients ``grads`` [m, d] with damping ``damp``."""

    def __init__(self, grads: torch.Tensor, damp: float, block: int = 0) -> None:
        m, d = grads.shape
        self.d, self.block, self.eps = d, block if 0 < block < d else d, 1.0 / damp
        blocks = self._blocked(grads)  # [nb, m, B]
        v = torch.zeros_like(blocks)
        denominators = torch.zeros(blocks.shape[0], m, dtype=grads.dtype, device=grads.device)
        for i in range(m):
            g = blocks[:, i]
            coefficients = torch.einsum("bjk,bk->bj", v[:, :i], g) / denominators[:, :i]
            v[:, i] = self.eps * g - torch.einsum("bj,bjk->bk", coefficients, v[:, :i])
            denominators[:, i] = m + (g * v[:, i]).sum(1)
        self.v, self.denominators = v, denominators

    def _blocked(self, x: torch.Tensor) -> torch.Tensor:
        """[..., d] -> [nb, ..., B], zero-padded to whole blocks."""
        pad = (-self.d) % self.block
        x = nn.functional.pad(x, (0, pad)).reshape(*x.shape[:-1], -1, self.block)
        return x.movedim(-2, 0)

    def _unblocked(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(0, -2).reshape(*x.shape[1:-1], -1)[..., : self.d]

    def times(self, x: torch.Tensor) -> torch.Tensor:
        """F^-1 x for x [d]."""
        xb = self._blocked(x)  # [nb, B]
        coefficients = torch.einsum("bjk,bk->bj", self.v, xb) / self.denominators
        return self._unblocked(self.eps * xb - torch.einsum("bj,bjk->bk", coefficients, self.v))

    def diagonal(self) -> torch.Tensor:
        return self._unblocked(self.eps - (self.v**2 / self.denominators.unsqueeze(2)).sum(1))


def gradients(model: nn.Module, layers: list[Prunable], masks: list[torch.Tensor], x: torch.Tensor,
              y: torch.Tensor, count: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` mini-batch loss gradients [count, d] of the prunable weights, zero at pruned ones."""
    rows = []
    model.eval()
    for _ in range(count):
        batch = torch.randint(len(x), (batch_size,), generator=generator)
        model.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        rows.append(torch.cat([(layer.weight.grad * mask).reshape(-1) for layer, mask in zip(layers, masks,
                                                                                                 strict=True)]))
    model.zero_grad()
    return torch.stack(rows).to(torch.float64)


def obs_prune(model: nn.Module, layers: list[Prunable], masks: list[torch.Tensor], sparsity: float,
              x: torch.Tensor, y: torch.Tensor, *, grads: int, batch_size: int, damp: float, block: int,
              recomputations: int, generator: torch.Generator,
              advance: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Prune to ``sparsity`` in ``recomputations`` sub-steps of equal keep ratio, recomputing the gradients and
    the inverse Fisher before each, and updating the surviving weights (OBS). Returns the new keep-masks."""
    sizes = [layer.weight.numel() for layer in layers]
    total = sum(sizes)
    kept = sum(int(m.sum()) for m in masks) / total
    factor = ((1 - sparsity) / kept) ** (1 / recomputations) if kept > 0 else 0.0
    for step in range(1, recomputations + 1):
        target = 1 - kept * factor**step
        inverse = InverseFisher(gradients(model, layers, masks, x, y, grads, batch_size, generator), damp, block)
        weights = torch.cat([layer.weight.detach().reshape(-1) for layer in layers]).to(torch.float64)
        diagonal = inverse.diagonal()
        rho = weights**2 / (2 * diagonal)
        new = [m.view_as(old) for m, old in zip(global_masks(list(rho.split(sizes)), round(target * total)), masks,
                                                   strict=True)]
        dropped = torch.cat([(old & ~m).reshape(-1) for old, m in zip(masks, new, strict=True)])
        update = -inverse.times(torch.where(dropped, weights / diagonal, 0.0))
        weights = (weights + update) * torch.cat([m.reshape(-1) for m in new])
        with torch.no_grad():
            for layer, chunk in zip(layers, weights.split(sizes), strict=True):
                layer.weight.copy_(chunk.view_as(layer.weight))
        masks = new
        if advance is not None:
            advance(1)
    return masks
