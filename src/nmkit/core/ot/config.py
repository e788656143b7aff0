"""Schema of ``nmkit optimal-transport``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import CommonConfig, option

REG_HELP = {
    "sparsity": "squared-L2 with at most k non-zeros per column (Liu, Puigcerver and Blondel, ICLR 2023)",
    "quadratic": "squared-L2 without a sparsity constraint (Blondel, Seguy and Rolet, AISTATS 2018)",
    "entropic": "entropy (log-domain Sinkhorn); dense plans",
    "exact": "unregularised OT by linear programming (assignment when the weights are uniform and m = n)",
}
PROBLEM_HELP = {
    "gaussians": "two 2-D Gaussian point clouds of `size` points each, squared-Euclidean cost",
    "color-transfer": "colour palettes (k-means, `size` colours) of two generated images; writes the recoloured image",
    "moe-routing": "`groups` routing problems of `size` tokens x `experts` experts, balanced expert load",
}


@dataclass(frozen=True)
class OTConfig(CommonConfig):
    """A transport plan between weighted sources (rows) and targets (columns) of a cost matrix."""

    source: Path | None = option(None, "source points, .npy [m, d]")
    target: Path | None = option(None, "target points, .npy [n, d]")
    cost: Path | None = option(None, "cost matrix .npy [m, n] (or [batch, m, n]) instead of points")
    source_weights: Path | None = option(None, "source weights a, .npy [m] (default uniform)")
    target_weights: Path | None = option(None, "target weights b, .npy [n] (default uniform)")
    problem: Literal["gaussians", "color-transfer", "moe-routing"] | None = option(
        None, "a built-in problem instead of files: " + "; ".join(f"{k}: {v}" for k, v in PROBLEM_HELP.items()))
    size: int = option(500, "built-in problems: points per cloud, colours per palette, or tokens per group",
                       ge=2, le=10_000_000)
    experts: int = option(8, "moe-routing: number of experts", ge=2, le=100_000)
    groups: int = option(1, "moe-routing: independent problems solved together in one batch", ge=1, le=100_000)
    metric: Literal["sqeuclidean", "euclidean", "cityblock"] = option("sqeuclidean", "cost between points")
    normalize: bool = option(True, "rescale weights to sum to 1 (off: weights must already sum to 1)")
    reg: Literal["sparsity", "quadratic", "entropic", "exact"] = option(
        "sparsity", "regulariser: " + "; ".join(f"{k}: {v}" for k, v in REG_HELP.items()))
    k: int = option(2, "sparsity: at most k non-zeros per column (sources per target)", ge=1, le=1_000_000)
    gamma: float = option(0.1, "regularisation strength, relative to max(cost)", gt=0)
    formulation: Literal["semi-dual", "dual"] = option("semi-dual", "which concave problem L-BFGS maximises")
    tol: float = option(1e-9, "L-BFGS tolerance (scipy's L-BFGS-B `tol`, as POT); Sinkhorn: marginal error", gt=0)
    stall_tol: float = option(1e-6, "L-BFGS: converged once the dual objective gains less than this (relative) over "
                                    "50 iterations", gt=0)
    max_iter: int | None = option(None, "iteration cap (default 1,000, times n / 1,000 beyond 1,000 points)",
                                  ge=1, le=10_000_000)
    memory: int = option(30, "L-BFGS stored corrections (scipy's maxcor)", ge=1, le=1000)

    def __post_init__(self) -> None:
        files = self.source is not None or self.target is not None or self.cost is not None
        if self.problem is not None and files:
            raise ConfigError("problem cannot be combined with source/target/cost files")
        if self.problem is None:
            if self.cost is None and (self.source is None or self.target is None):
                raise ConfigError("give source and target points, or a cost matrix, or a built-in problem")
            if self.cost is not None and (self.source is not None or self.target is not None):
                raise ConfigError("give either a cost matrix or source/target points, not both")
