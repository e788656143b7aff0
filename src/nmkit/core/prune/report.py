"""What the sparsity buys, per layer: density, FLOPs remaining, collapse, PQ Index (Gupta et al. Sec. 4 report
FLOPs as conv nnz x output positions and linear nnz)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmkit.core.prune.masks import Prunable
from nmkit.core.prune.pqi import pq_index


@dataclass
class LayerReport:
    name: str
    kind: str
    weights: int
    nonzero: int
    flops_dense: int | None  # None: output positions unknown (TorchScript conv)
    flops: int | None
    dead_units: int  # output units whose every input weight is pruned
    pqi: float

    @property
    def density(self) -> float:
        return self.nonzero / self.weights

    @property
    def collapsed(self) -> bool:
        return self.nonzero == 0 or self.dead_units > 0


def output_positions(model: nn.Module, layers: list[Prunable], example: torch.Tensor) -> dict[str, int]:
    """Spatial output positions of each conv layer, by forward hooks on one example (not for TorchScript)."""
    positions: dict[str, int] = {}
    handles = []
    for layer in layers:
        if layer.kind == "conv" and not isinstance(layer.module, torch.jit.ScriptModule):
            def record(module, inputs, output, name=layer.name):
                positions[name] = output[0, 0].numel()
            handles.append(layer.module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return positions


def layer_reports(layers: list[Prunable], positions: dict[str, int], p: float = 0.5,
                  q: float = 1.0) -> list[LayerReport]:
    reports = []
    for layer in layers:
        weight = layer.weight.detach()
        nonzero = int(torch.count_nonzero(weight))
        per_output = 1 if layer.kind == "linear" else positions.get(layer.name)
        dead = dead_units(weight)
        reports.append(LayerReport(layer.name, layer.kind, weight.numel(), nonzero,
                                   None if per_output is None else weight.numel() * per_output,
                                   None if per_output is None else nonzero * per_output, dead, pq_index(weight, p, q)))
    return reports


def dead_units(weight: torch.Tensor) -> int:
    """Output units (rows) whose every input weight is zero."""
    if weight.numel() == 0:
        return weight.shape[0]
    return int((~(weight.reshape(weight.shape[0], -1) != 0).any(1)).sum())


def summary(reports: list[LayerReport], pqi_global: float) -> dict:
    """The whole model's figures from its layers' reports; ``pqi_global`` is the PQ Index of all pruned weights."""
    weights = sum(r.weights for r in reports)
    nonzero = sum(r.nonzero for r in reports)
    known = [r for r in reports if r.flops is not None]
    return {
        "sparsity": 1 - nonzero / weights,
        "weights": weights,
        "nonzero": nonzero,
        "flops_remaining": (sum(r.flops for r in known) / sum(r.flops_dense for r in known)) if known else None,
        "flops_note": None if len(known) == len(reports) else "conv layers of TorchScript models are left out",
        "collapsed_layers": [r.name for r in reports if r.collapsed],
        "pqi_global": pqi_global,
    }
