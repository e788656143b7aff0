"""What ``nmkit prune`` reports: one :class:`SparsityRun` per level of the sweep inside a :class:`PruneResult`
(shared by the in-memory path, ``run.py``, and the streaming checkpoint path, ``tensors.py``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn


@dataclass
class SparsityRun:
    target: float
    sparsity: float
    accuracy_pruned: float | None
    accuracy_fine_tuned: float | None
    flops_remaining: float | None
    collapsed_layers: list[str]
    pqi_global: float
    prune_steps: int
    seconds_pruning: float
    layers: list[dict]


@dataclass
class PruneResult:
    method: str
    model_format: str
    dense_accuracy: float | None  # None: a tensor checkpoint (nothing to run)
    dense_pqi: float
    runs: list[SparsityRun]
    notes: list[str] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False)  # pruned to the last sparsity
    prunable: list[str] = field(default_factory=list, repr=False)
    left_out: dict[str, str] = field(default_factory=dict)  # parameter -> why it was not pruned

    def summary(self) -> dict:
        return {"method": self.method, "model_format": self.model_format, "dense_accuracy": self.dense_accuracy,
                "dense_pqi": self.dense_pqi, "runs": [asdict(r) for r in self.runs], "notes": self.notes,
                "pruned_parameters": self.prunable, "left_out": self.left_out}
