"""The MILP backends: HiGHS through ``scipy.optimize.milp`` (default) and SCIP through PySCIPOpt where installed.

Both take SciPy's form (objective, integrality, Bounds, LinearConstraint, options with mip_rel_gap and
time_limit) and answer with SciPy's result fields (x, fun, status, message, mip_dual_bound). The backend is
chosen once per process (``use``); data-collection workers are started with the same choice.
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import milp

from nmkit.core.errors import InputError

BACKENDS = ("highs", "scip")
_backend = "highs"


def use(name: str) -> None:
    """Select the backend for this process; SCIP needs PySCIPOpt."""
    global _backend
    if name not in BACKENDS:
        raise InputError(f"solver {name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "scip":
        try:
            import pyscipopt  # noqa: F401
        except ImportError:
            raise InputError("solver scip: PySCIPOpt is not installed (pip install pyscipopt)") from None
    _backend = name


def backend() -> str:
    return _backend


@contextlib.contextmanager
def silenced():
    """HiGHS's MIP solver prints stray debug lines straight to file descriptor 1, which would corrupt --json
    output; point fd 1 at /dev/null while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


RETRIES = ({"presolve": False}, {"random_seed": 1}, {"random_seed": 2, "mip_feasibility_tolerance": 1e-7})


def solve_milp(objective, *, integrality, bounds, constraints, options=None):
    """Minimise with the selected backend. HiGHS (1.x in SciPy 1.17) sometimes ends in "Solve error" (status 4) on
    small big-M models that it solves fine with presolve off or another random seed, so such a solve is retried
    with those settings before the error is reported."""
    options = options or {}
    if _backend == "scip":
        return _scip(objective, integrality, bounds, constraints, options)
    kwargs = {"integrality": integrality, "bounds": bounds, "constraints": constraints}
    with silenced():
        result = milp(objective, **kwargs, options=options)
        for change in RETRIES:
            if result.status != 4:
                break
            result = milp(objective, **kwargs, options={**options, **change})
    return result


def _scip(objective, integrality, bounds, constraints, options) -> SimpleNamespace:
    import pyscipopt

    model = pyscipopt.Model()
    model.hideOutput()
    model.setParam("limits/gap", options.get("mip_rel_gap", 1e-4))
    if "time_limit" in options:
        model.setParam("limits/time", float(options["time_limit"]))
    n = len(objective)
    low, high = np.broadcast_to(bounds.lb, n), np.broadcast_to(bounds.ub, n)
    variables = [model.addVar(lb=None if np.isinf(lo) else float(lo), ub=None if np.isinf(hi) else float(hi),
                              vtype="I" if kind else "C", obj=float(c))
                 for c, kind, lo, hi in zip(objective, np.broadcast_to(integrality, n), low, high, strict=True)]
    matrix = sp.csr_matrix(constraints.A)
    row_low, row_high = (np.broadcast_to(v, matrix.shape[0]) for v in (constraints.lb, constraints.ub))
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        if start == end:
            continue  # an empty row (e.g. a ReLU that is always off) constrains nothing
        expression = pyscipopt.quicksum(float(a) * variables[j]
                                        for a, j in zip(matrix.data[start:end], matrix.indices[start:end], strict=True))
        lhs = None if np.isinf(row_low[i]) else float(row_low[i])
        rhs = None if np.isinf(row_high[i]) else float(row_high[i])
        model.addCons(pyscipopt.scip.ExprCons(expression, lhs=lhs, rhs=rhs))
    model.setMinimize()
    model.optimize()
    status = model.getStatus()
    if model.getNSols() == 0:
        return SimpleNamespace(x=None, fun=None, status=2, message=f"SCIP: {status}", mip_dual_bound=None)
    solution = model.getBestSol()
    x = np.array([model.getSolVal(solution, v) for v in variables])
    return SimpleNamespace(x=x, fun=float(model.getSolObjVal(solution)), status=0 if status == "optimal" else 1,
                           message=f"SCIP: {status}", mip_dual_bound=float(model.getDualbound()))


def dual_bound(result) -> float:
    """The best bound of a minimisation stopped at a time limit or a relative MIP gap (the solver's dual bound;
    the objective itself only where the solver reports no bound)."""
    bound = getattr(result, "mip_dual_bound", None)
    return float(result.fun if bound is None or not np.isfinite(bound) else bound)
