"""HiGHS through ``scipy.optimize.milp``, quiet and with one retry."""

from __future__ import annotations

import contextlib
import os
import sys

from scipy.optimize import milp


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


def solve_milp(*args, **kwargs):
    """scipy.optimize.milp, silenced. HiGHS (1.x in SciPy 1.17) sometimes ends in "Solve error" (status 4) on
    small big-M models that it solves fine with presolve off or another random seed, so such a solve is retried
    with those settings before the error is reported."""
    with silenced():
        result = milp(*args, **kwargs)
        for change in RETRIES:
            if result.status != 4:
                break
            result = milp(*args, **{**kwargs, "options": {**kwargs.get("options", {}), **change}})
    return result


def dual_bound(result) -> float:
    """The best bound of a (possibly time-limited) minimisation."""
    bound = getattr(result, "mip_dual_bound", None)
    return float(result.fun if bound is None or result.status == 0 else bound)
