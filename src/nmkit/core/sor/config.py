"""Schema of ``nmkit relax-sor``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import CommonConfig, option

LEARNER_HELP = {
    "tsallis-inf": "bandit over the omega grid, sees iteration counts only (Zimmert and Seldin 2021)",
    "chebcb": "contextual: least squares on Chebyshev features of the context, inverse-gap weighting",
    "tsallis-inf-cb": "contextual: one Tsallis-INF per context bin (5 bins)",
    "fixed": "always the given omega",
}


BUILT_IN_STEPS = 1000


@dataclass(frozen=True)
class SORConfig(CommonConfig):
    """Pick the SOR relaxation omega for each system of a sequence, online (Khodak et al., ICLR 2024)."""

    sequence: Literal["shifted-laplacian", "heat2d", "files"] = option(
        "shifted-laplacian", "shifted-laplacian (10x10 Laplacian + c I), heat2d (Crank-Nicolson), or files")
    variance: Literal["high", "low"] = option("high",
                                              "shifted-laplacian: c = -0.15 + 0.6 Beta(0.5, 1.5), or Beta(2, 6)")
    n: int = option(50, "heat2d: grid points per side ((n-1)^2 unknowns)", ge=3, le=100_000)
    path: Path | None = option(None, "files: a folder of A_<t>.mtx + b_<t>.npy (+ context.npy) or an .npz")
    steps: int | None = option(None, "systems in the sequence: 1000 for the built-in ones; files: the whole sequence "
                                     "unless given (fewer runs the first ones, and the result says so)", ge=1,
                               le=10_000_000)
    learner: Literal["tsallis-inf", "chebcb", "tsallis-inf-cb", "fixed"] = option(
        "tsallis-inf", "how omega is chosen: " + "; ".join(f"{k}: {v}" for k, v in LEARNER_HELP.items()))
    omega: float | None = option(None, "fixed learner: the omega to use", gt=0, lt=2)
    omega_min: float = option(1.0, "smallest omega on the grid", gt=0, lt=2)
    omega_max: float = option(1.95, "largest omega on the grid", gt=0, lt=2)
    omegas: int = option(20, "grid size (evenly spaced)", ge=1, le=1000)
    solver: Literal["sor", "ssor-pcg"] = option("sor", "sor, or CG preconditioned by SSOR(omega)")
    ordering: Literal["auto", "lexicographic", "red-black"] = option(
        "auto", "SOR sweep order: red-black (matrix-free, parallel) needs a 5-point stencil sequence; auto uses it "
        "there and lexicographic (compiled CSR) elsewhere")
    rtol: float = option(1e-8, "stop at ||b - A x|| / ||b - A x0|| below this", gt=0, lt=1)
    max_iter: int = option(10_000, "iteration cap per solve (solves that hit it are counted and reported)",
                           ge=1, le=10_000_000)
    baselines: bool = option(True, "also solve every instance with every grid omega (hindsight and regret)")
    resume: bool = option(False, "continue the run whose state file is in --out (or --state), exactly; every "
                                 "setting must match the one that wrote it")
    checkpoint_every: int = option(100, "write the resumable state file every this many systems", ge=1, le=10_000_000)

    @property
    def length(self) -> int | None:
        """Systems to run: ``steps``, 1000 for a built-in sequence, None (all) for files."""
        return self.steps if self.steps is not None or self.sequence == "files" else BUILT_IN_STEPS

    def __post_init__(self) -> None:
        if self.omega_min > self.omega_max:
            raise ConfigError("omega_min must be <= omega_max")
        if self.learner == "fixed" and self.omega is None:
            raise ConfigError("learner fixed needs omega")
        if self.sequence == "files" and self.path is None:
            raise ConfigError("sequence files needs path")
        if self.ordering == "red-black" and (self.sequence == "files" or self.solver != "sor"):
            raise ConfigError("ordering red-black needs solver sor on a built-in (5-point stencil) sequence")
