"""Evaluation and masked fine-tuning: masks stay applied after every optimiser step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nmkit.core.prune.masks import Prunable


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(batch), y.split(batch),
                                                                                strict=True))
    return correct / max(len(y), 1)


def apply_masks(layers: list[Prunable], masks: list[torch.Tensor]) -> None:
    """Fold the keep-masks into the weights, in place."""
    with torch.no_grad():
        for layer, mask in zip(layers, masks, strict=True):
            layer.weight.mul_(mask.to(layer.weight.dtype))


def train_epochs(model: nn.Module, layers: list[Prunable], masks: list[torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, epochs: float, *, lr: float, batch_size: int, generator: torch.Generator,
                 optimiser: torch.optim.Optimizer | None = None,
                 on_step: Callable[[], None] | None = None) -> torch.optim.Optimizer:
    """Adam on cross-entropy for ``epochs`` (fractions allowed) of shuffled mini-batches, re-applying the masks
    after each step so pruned weights stay zero. Returns the optimiser so a schedule can carry its state on."""
    optimiser = optimiser or torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    steps = round(epochs * -(-len(x) // batch_size))
    model.train()
    done = 0
    while done < steps:
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            if done == steps:
                break
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
            apply_masks(layers, masks)
            done += 1
            if on_step is not None:
                on_step()
    model.eval()
    return optimiser
