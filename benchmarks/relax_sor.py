"""relax-sor: the paper's two experiments, and SOR sweep throughput against PyAMG and SciPy.

1. Shifted 10x10 Laplacians (high-variance context), ``--steps`` systems, SOR at rtol 1e-8: total
   iterations of Tsallis-INF, Tsallis-INF-CB, ChebCB, the best fixed omega in hindsight, the best grid
   omega per system, omega*(A_t), Gauss-Seidel.
2. Heat-2D (Crank-Nicolson, SSOR-PCG, warm starts) at the ``--heat-n`` grids, same table.
3. Throughput of SOR sweeps (unknown-updates per second) on 5-point Laplacians, 50 sweeps each: nmkit's
   red-black matrix-free sweep (parallel from 128^2) and compiled lexicographic CSR sweep, PyAMG's
   ``relaxation.sor`` (C++, lexicographic), and SciPy ``spsolve_triangular`` with M = D/omega + L (the
   MATLAB-equivalent reference). The lexicographic results are checked equal before timing.

    python -m benchmarks.relax_sor [--steps 5000] [--heat-n 25 50] [--heat-steps 1000] [--sides 64 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from benchmarks.harness import median_seconds, print_table
from nmkit.core.sor.config import SORConfig
from nmkit.core.sor.run import run
from nmkit.core.sor.sequences import laplacian_2d
from nmkit.core.sor.solvers import System, sweeps
from nmkit.core.sor.stencil import Stencil, kernels

LEARNERS = ("tsallis-inf", "tsallis-inf-cb", "chebcb")


def experiment(base: dict) -> dict:
    """Every learner on one sequence; the baselines come with the first (same seed -> same systems)."""
    results = {}
    for index, learner in enumerate(LEARNERS):
        start = time.perf_counter()
        results[learner] = run(SORConfig(learner=learner, baselines=index == 0, **base))
        results[learner].seconds = time.perf_counter() - start
    return results


def experiment_rows(name: str, results: dict) -> list[list[str]]:
    reference = results[LEARNERS[0]]
    rows = [[name, f"learner {k}", f"{r.learner_iterations:,}",
             f"{r.learner_iterations / reference.best_fixed_iterations:.3f}"] for k, r in results.items()]
    baselines = [(f"best fixed omega {reference.best_fixed_omega:.3f}", reference.best_fixed_iterations),
                 ("best grid omega per system", reference.oracle_iterations),
                 ("omega*(A_t) per system", reference.instance_optimal_iterations),
                 ("Gauss-Seidel", reference.gauss_seidel_iterations)]
    rows += [[name, label, f"{total:,}", f"{total / reference.best_fixed_iterations:.3f}"]
             for label, total in baselines if total is not None]
    return rows


def throughput(side: int, count: int = 50, omega: float = 1.5) -> dict:
    from pyamg.relaxation.relaxation import sor as pyamg_sor

    a = laplacian_2d(side)
    b = np.random.default_rng(0).normal(size=side * side)
    system = System.prepare(a, b)
    ours_x, amg_x, ref_x = np.zeros_like(b), np.zeros_like(b), np.zeros_like(b)
    lower = scipy.sparse.csr_matrix(scipy.sparse.tril(a, k=-1) + scipy.sparse.diags_array(a.diagonal() / omega))

    def reference():
        for _ in range(count):
            ref_x[:] += scipy.sparse.linalg.spsolve_triangular(lower, b - a @ ref_x, lower=True)

    for x in (ours_x, amg_x, ref_x):
        x[:] = 0
    sweeps(system.indptr, system.indices, system.data, system.diag, system.b, ours_x, omega, count)
    pyamg_sor(scipy.sparse.csr_array(a), amg_x, b, omega, iterations=count)
    reference()
    np.testing.assert_allclose(ours_x, ref_x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(amg_x, ref_x, rtol=1e-9, atol=1e-12)
    stencil = Stencil(side, 4.0, 1.0)
    u, f = stencil.grid(np.zeros_like(b)), stencil.grid(b)
    red_black = kernels(side)[1]
    timings = {
        "red_black": median_seconds(lambda: red_black(u, f, 4.0, 1.0, omega, count))[0],
        "nmkit": median_seconds(lambda: sweeps(system.indptr, system.indices, system.data, system.diag, system.b,
                                               ours_x, omega, count))[0],
        "pyamg": median_seconds(lambda: pyamg_sor(scipy.sparse.csr_array(a), amg_x, b, omega, iterations=count))[0],
        "scipy": median_seconds(reference, repeats=3)[0],
    }
    return {"side": side, **{k: side * side * count / v for k, v in timings.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--heat-n", type=int, nargs="*", default=[25, 50])
    parser.add_argument("--heat-steps", type=int, default=1000)
    parser.add_argument("--sides", type=int, nargs="*", default=[64, 256, 1024])
    args = parser.parse_args(argv)
    rows = experiment_rows("shifted Laplacian, SOR", experiment({"steps": args.steps}))
    for n in args.heat_n:
        base = {"sequence": "heat2d", "n": n, "steps": args.heat_steps, "solver": "ssor-pcg"}
        rows += experiment_rows(f"heat-2D n={n}, SSOR-PCG", experiment(base))
    print_table("relax-sor: total iterations to rtol 1e-8", ["sequence", "policy", "iterations", "/ best fixed"], rows)
    speed = [throughput(side) for side in args.sides]
    print_table("SOR sweeps, 5-point Laplacian (million unknown-updates per second)",
                ["grid", "nmkit red-black", "nmkit CSR", "PyAMG sor", "SciPy triangular solve", "red-black / PyAMG",
                 "CSR / PyAMG"],
                [[f"{r['side']}^2", f"{r['red_black'] / 1e6:.0f}", f"{r['nmkit'] / 1e6:.0f}", f"{r['pyamg'] / 1e6:.0f}",
                  f"{r['scipy'] / 1e6:.1f}", f"{r['red_black'] / r['pyamg']:.1f}x", f"{r['nmkit'] / r['pyamg']:.2f}x"]
                 for r in speed])
    return {"rows": rows, "throughput": speed}


if __name__ == "__main__":
    main()
