"""Linear solvers for SPD systems on grids: CG, PCG (Jacobi, incomplete factorisation, AMG) and the Deep
Conjugate Direction Method with a learned direction generator. ``solve(A, b, method=..., rtol=..., maxiter=...,
callback=...)`` is the library entry point (scipy.sparse.linalg's names)."""

from nmkit._lazy import lazy_exports

__all__ = ["LinearConfig", "SolveInfo", "solve"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "LinearConfig": "config",
    "SolveInfo": "api",
    "solve": "api",
})
