"""Each method as a step "prune the model to sparsity s": a score per weight and a per-layer budget, then the
shared mask builders (masks.py). Pruned weights hold zero, so magnitude-based scores rank them first and every
step's mask contains the previous one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nmkit.core.prune import masks as mk
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.mfac import obs_prune
from nmkit.core.prune.pqi import sap_prune_count
from nmkit.core.prune.rd import allocate, distortion_curves, fraction_grid
from nmkit.core.prune.training import apply_masks


@dataclass
class Pruning:
    """A model being pruned: its prunable layers, their keep-masks, and data for calibration."""

    model: nn.Module
    layers: list[mk.Prunable]
    masks: list[torch.Tensor]
    x: torch.Tensor
    y: torch.Tensor
    config: PruneConfig
    generator: torch.Generator
    advance: Callable[[int], None] | None = None

    @property
    def sizes(self) -> list[int]:
        return [layer.weight.numel() for layer in self.layers]

    def magnitudes(self) -> list[torch.Tensor]:
        return [layer.weight.detach().abs() for layer in self.layers]

    def sparsity(self) -> float:
        return 1 - sum(int(m.sum()) for m in self.masks) / sum(self.sizes)

    def set_masks(self, masks: list[torch.Tensor]) -> None:
        self.masks = [old & new for old, new in zip(self.masks, masks, strict=True)]
        apply_masks(self.layers, self.masks)


def min_per_layer_count(config: PruneConfig, total: int) -> int:
    floor = config.min_per_layer
    return int(floor) if floor >= 1 else math.floor(floor * total)


def prune_to(state: Pruning, sparsity: float) -> None:
    """One pruning step of the configured method to the given overall sparsity."""
    config, total = state.config, sum(state.sizes)
    method = config.effective_method
    if method == "global-mp":
        new = mk.global_masks([layer.weight for layer in state.layers], round(sparsity * total), absolute=True)
        floor = min_per_layer_count(config, total)
        if floor > 0:
            reached = [1 - int(m.sum()) / m.numel() for m in new]
            wanted = mk.minimum_threshold_sparsities(state.sizes, reached, sparsity, floor)
            new = mk.layer_masks(state.magnitudes(), wanted, rounding=math.floor)
    elif method == "layer-mp":
        new = mk.layer_masks(state.magnitudes(), [sparsity] * len(state.layers))
    elif method == "random":
        scores = [torch.rand(m.shape, generator=state.generator).to(m.device) * m for m in state.masks]
        new = mk.layer_masks(scores, [sparsity] * len(state.layers))
    elif method == "lamp":
        new = mk.global_masks(mk.lamp_scores([layer.weight for layer in state.layers]), round(sparsity * total))
    elif method == "rd":
        new = _rd_masks(state, sparsity)
    elif method == "mfac":
        options = config.mfac
        new = obs_prune(state.model, state.layers, state.masks, sparsity, state.x, state.y, grads=options.grads,
                        batch_size=options.batch_size, damp=options.damp, block=options.block,
                        recomputations=options.recomputations, generator=state.generator)
    else:
        raise ValueError(f"prune_to does not handle {method}; SAP runs sap_step")
    state.set_masks(new)


def _rd_masks(state: Pruning, sparsity: float) -> list[torch.Tensor]:
    options = state.config.rd
    grid = fraction_grid(options.grid, options.allow_empty_layers)
    calibration = state.x[: options.calibration]
    curves = distortion_curves(state.model, state.layers, calibration, grid, worst_case=options.worst_case,
                               advance=state.advance)
    floors = [1 - int(m.sum()) / m.numel() for m in state.masks]
    amounts = allocate(curves, state.sizes, grid, sparsity, floors)
    return mk.layer_masks(state.magnitudes(), amounts)


def sap_step(state: Pruning, cap: float) -> int:
    """One SAP iteration in the configured scope (global, layer or per output neuron): each group prunes c_t of
    its remaining weights as the PQ Index rule says, scaled down so overall sparsity stays <= ``cap``.
    Returns how many weights it pruned."""
    options, total = state.config.sap, sum(state.sizes)
    allowance = max(math.floor(cap * total) - (total - sum(int(m.sum()) for m in state.masks)), 0)
    rows = _sap_groups(state, options.scope)
    counts = [_row_counts(group, options) for group in rows]
    wanted = sum(int(c.sum()) for c in counts)
    if wanted == 0 or allowance == 0:
        return 0
    if wanted > allowance:
        counts = [torch.floor(c * (allowance / wanted)).long() for c in counts]
    if options.scope == "global":
        pruned = total - sum(int(m.sum()) for m in state.masks)
        state.set_masks(mk.global_masks(state.magnitudes(), pruned + int(counts[0].sum())))
    else:
        state.set_masks([_prune_rows(group, c).view_as(layer.weight)
                         for group, c, layer in zip(rows, counts, state.layers, strict=True)])
    return sum(int(c.sum()) for c in counts)


def _sap_groups(state: Pruning, scope: str) -> list[torch.Tensor]:
    """Magnitudes as [groups, size] matrices: all weights in one row (global), one row per layer, or one row
    per output unit (neuron)."""
    if scope == "global":
        return [torch.cat([m.reshape(-1) for m in state.magnitudes()]).unsqueeze(0)]
    if scope == "layer":
        return [m.reshape(1, -1) for m in state.magnitudes()]
    return [m.reshape(m.shape[0], -1) for m in state.magnitudes()]


def _row_counts(group: torch.Tensor, options) -> torch.Tensor:
    """c_t for every row of a [groups, size] magnitude matrix, with the PQ Index of its non-zero entries."""
    values = group.to(torch.float64)
    alive = values > 0
    remaining = alive.sum(1)
    safe = remaining.clamp(min=1)
    mean_p = (torch.where(alive, values, 0).pow(options.p).sum(1) / safe).pow(1 / options.p)
    mean_q = (torch.where(alive, values, 0).pow(options.q).sum(1) / safe).pow(1 / options.q)
    index = torch.where(remaining > 0, 1 - mean_p / mean_q.clamp(min=1e-300), 0).clamp(min=0)
    return torch.tensor([sap_prune_count(int(d), float(i), p=options.p, q=options.q, eta_r=options.eta_r,
                                         gamma=options.gamma, beta=options.beta)
                         for d, i in zip(remaining, index, strict=True)], dtype=torch.long)


def _prune_rows(group: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Keep-mask pruning, in each row, its zeros and then its ``counts`` smallest remaining magnitudes."""
    prune = (group == 0).sum(1) + counts
    ranks = group.argsort(dim=1, stable=True).argsort(dim=1, stable=True)
    return ranks >= prune.unsqueeze(1)
