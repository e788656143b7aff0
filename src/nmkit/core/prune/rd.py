"""Layer-adaptive pruning by rate-distortion (Xu et al., ICCV 2023, Sec. 3.2-3.3).

Output distortion is taken as additive over layers, D(a_1..a_L) ~ sum_l D_l(a_l), where D_l(a) is measured by
pruning the fraction a of layer l alone (by magnitude) on a calibration batch. A dynamic program over layers
then picks the grid point of every layer minimising the summed distortion subject to the survivor budget
sum_l (n_l - round(a_l n_l)) <= floor((1 - S) N), with a_l no smaller than what layer l has already lost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from nmkit.core.errors import InputError
from nmkit.core.prune.masks import Prunable, layer_masks

DP_UNITS = 20_000  # survivor counts are bucketed so the DP table stays this wide on large models
NEAR_ONE = (0.99, 0.995, 0.999)  # extreme sparsities stay reachable without emptying any layer


def fraction_grid(points: int, allow_empty: bool) -> np.ndarray:
    """Pruning fractions 0 .. 1 in ``points`` even steps; without ``allow_empty`` the fraction 1 (a layer pruned
    away entirely, where additivity breaks down) is replaced by a few points just below it."""
    grid = np.linspace(0.0, 1.0, points)
    if allow_empty:
        return grid
    return np.unique(np.concatenate([grid[:-1], NEAR_ONE]))


def distortion_curves(model: nn.Module, layers: list[Prunable], calibration: torch.Tensor, grid: np.ndarray, *,
                      worst_case: bool = False, advance: Callable[[int], None] | None = None) -> np.ndarray:
    """D_l(a) [L, len(grid)]: mean squared logit change (or, ``worst_case``, the largest per-sample mean) when
    only layer l is pruned to fraction a by magnitude; every layer is restored afterwards."""
    curves = np.zeros((len(layers), len(grid)))
    with torch.no_grad():
        reference = model(calibration)
        for i, layer in enumerate(layers):
            original = layer.weight.detach().clone()
            for j, fraction in enumerate(grid):
                mask = layer_masks([original.abs()], [float(fraction)])[0]
                layer.weight.copy_(original * mask)
                error = ((model(calibration) - reference) ** 2).flatten(1).mean(1)
                curves[i, j] = float(error.max() if worst_case else error.mean())
            layer.weight.copy_(original)
            if advance is not None:
                advance(1)
    return curves


def allocate(curves: np.ndarray, sizes: list[int], grid: np.ndarray, sparsity: float,
             floors: list[float] | None = None) -> list[float]:
    """The per-layer grid fractions minimising sum_l D_l(a_l) within the survivor budget (exact DP)."""
    total = sum(sizes)
    unit = max(1, -(-total // DP_UNITS))
    budget = int(np.floor((1 - sparsity) * total)) // unit
    floors = floors or [0.0] * len(sizes)
    best = np.zeros(budget + 1)  # best[s]: least distortion of the layers so far with at most s survivor units
    choices = []
    for curve, size, floor in zip(curves, sizes, floors, strict=True):
        survivors = np.array([-(-(size - round(a * size)) // unit) for a in grid])  # rounded up: budget holds
        allowed = (grid >= floor - 1e-12) & (survivors <= budget)
        table = np.full((len(grid), budget + 1), np.inf)
        for j in np.flatnonzero(allowed):
            table[j, survivors[j]:] = curve[j] + best[: budget + 1 - survivors[j]]
        choices.append(table.argmin(0))
        best = table.min(0)
    if not np.isfinite(best[budget]):
        raise InputError(f"rd: no allocation on the fraction grid reaches sparsity {sparsity} (the grid's largest "
                         f"fraction is {grid.max():g}; set rd.allow_empty_layers to prune layers away entirely)")
    picks, remaining = [], budget
    for choice, size in zip(reversed(choices), reversed(sizes), strict=True):
        j = int(choice[remaining])
        picks.append(float(grid[j]))
        remaining -= -(-(size - round(grid[j] * size)) // unit)
    return picks[::-1]
