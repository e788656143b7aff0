"""Schema of ``nmkit solve-linear``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import CommonConfig, option

ACTION_HELP = {
    "train": "train a direction network on a built-in operator, save it, then compare every method on it",
    "solve": "solve one system (a built-in problem or --matrix) with one method, or all of them",
}
METHOD_HELP = {
    "cg": "conjugate gradients",
    "pcg-jacobi": "CG preconditioned by the diagonal",
    "pcg-ic": "CG preconditioned by the incomplete Cholesky factor with no fill, IC(0)",
    "amg": "CG preconditioned by one smoothed-aggregation AMG V-cycle (PyAMG, where installed)",
    "dcdm": "deep conjugate directions: the trained network's direction, A-orthogonalised (needs --model)",
    "all": "every method above on the same system, side by side",
}
Problem = Literal["poisson2d", "poisson3d", "diffusion2d", "diffusion3d"]


@dataclass(frozen=True)
class LinearConfig(CommonConfig):
    """SPD linear systems on grids: CG, PCG, AMG-PCG and the Deep Conjugate Direction Method."""

    action: Literal["train", "solve"] = option("solve", "; ".join(f"{k}: {v}" for k, v in ACTION_HELP.items()))
    problem: Problem = option("poisson2d", "built-in operator: Dirichlet Poisson or variable-coefficient diffusion")
    n: int = option(64, "cells per side", ge=4, le=100_000)
    obstacle: Literal["none", "sphere", "box"] = option("none", "solid cells in the middle (Neumann walls)")
    contrast: float = option(10.0, "diffusion: ratio of the largest to the smallest coefficient", ge=1)
    matrix: Path | None = option(None, "solve: an SPD matrix (Matrix Market .mtx, or scipy .npz from save_npz) "
                                       "instead of a built-in problem")
    output: Path | None = option(None, "solve: write the solution x to this .npy (one method; --out writes x.npy "
                                       "or x-<method>.npy anyway)", writes=True)
    grid: list[int] | None = option(None, "solve --matrix with dcdm: the grid the unknowns live on, e.g. [64, 64]")
    rhs: Literal["random", "smooth", "divergence"] | Path = option("random", "right-hand side: a family, or .npy")
    model: Path | None = option(None, "dcdm: a model.pt from a train run, or its --out folder")
    method: Literal["cg", "pcg-jacobi", "pcg-ic", "amg", "dcdm", "all"] = option(
        "all", "; ".join(f"{k}: {v}" for k, v in METHOD_HELP.items()))
    tol: float = option(1e-6, "stop at ||b - A x|| / ||b|| <= tol", gt=0, lt=1)
    max_iter: int = option(2000, "iteration limit per solve", ge=1, le=10_000_000)
    k_orth: int = option(2, "dcdm: previous directions each new one is A-orthogonalised against", ge=0, le=100)
    true_residual_every: int = option(1, "dcdm: recompute b - A x every this many iterations", ge=1, le=10_000_000)
    safeguard: bool = option(True, "dcdm: step along the residual when it lowers the error more than the network's "
                                   "direction (nmkit's addition; false runs the paper's method)")
    levels: int = option(3, "network: 2x down/up levels (the paper's network has 1; more reach larger grids)",
                         ge=1, le=6)
    channels: int = option(16, "network: channels per convolution", ge=1, le=1024)
    steps: int = option(1000, "train: Adam steps", ge=1, le=10_000_000)
    batch_size: int = option(16, "train: right-hand sides per step", ge=1, le=4096)
    lr: float = option(1e-3, "train: Adam learning rate (cosine-annealed to 0)", gt=0)
    ritz_steps: int = option(400, "train: Lanczos steps whose Ritz vectors make the training data", ge=2, le=100_000)

    def __post_init__(self) -> None:
        if self.action == "train" and self.matrix is not None:
            raise ConfigError("action train builds its operator: field 'matrix' is for action solve")
        if self.output is not None and (self.action != "solve" or self.method == "all"):
            raise ConfigError("field 'output' takes the solution of one method in action solve; with method all, "
                              "--out writes x-<method>.npy for each")
        if self.method == "dcdm" and self.action == "solve" and self.model is None:
            raise ConfigError("method dcdm needs a trained model (field 'model')")
