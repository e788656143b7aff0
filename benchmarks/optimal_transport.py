"""nmkit optimal-transport vs POT on 2-D Gaussian clouds (cost scaled to max 1, uniform weights).

For each n = m and k: POT's sparsity-constrained semi-dual (``ot.smooth``, L-BFGS-B, stopThr = tol,
500 iterations as POT's default) against nmkit's semi-dual at the same k, gamma and tol, plus
``ot.emd`` (exact), ``ot.sinkhorn`` (eps = 0.01, log-domain) and POT's L2 semi-dual. Reported: wall
time (median of up to ``--repeats`` runs after a warm-up, POT capped by ``--budget`` seconds), cost
relative to exact OT, max non-zeros per column, row marginal L1 error, and the dual objective.

    python -m benchmarks.optimal_transport [--n 200 500 1000 2000] [--k 1 2 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import numpy as np

from benchmarks.harness import median_seconds, print_table
from nmkit.core.ot import OTConfig, Problem, build_problem
from nmkit.core.ot.transport import transport

GAMMA, TOL = 0.1, 1e-9


def pot_sparse(cost, a, b, k, max_iter=500):
    import ot

    with contextlib.redirect_stdout(io.StringIO()):  # POT 0.9.7's projection prints on every call
        plan, log = ot.smooth.smooth_ot_semi_dual(a, b, cost, GAMMA, reg_type="sparsity_constrained", max_nz=k,
                                                  stopThr=TOL, numItermax=max_iter, log=True)
    return plan, -log["res"].fun


def measure(n: int, ks: list[int], repeats: int, budget: float) -> list[dict]:
    import ot

    problem = build_problem(OTConfig(problem="gaussians", size=n, seed=0))
    full = problem.dense_cost(1)[0]
    cost, a, b = full / full.max(), problem.a[0], problem.b[0]
    exact = ot.emd2(a, b, cost)
    shared = {"n": n, "exact": exact}
    shared["emd"], _ = median_seconds(lambda: ot.emd(a, b, cost), repeats, budget)
    sinkhorn_plan = ot.sinkhorn(a, b, cost, 0.01, method="sinkhorn_log")
    shared["sinkhorn"], _ = median_seconds(lambda: ot.sinkhorn(a, b, cost, 0.01, method="sinkhorn_log"), 1, budget)
    shared["sinkhorn_cost"] = float((sinkhorn_plan * cost).sum() / exact)
    return [measure_k(Problem(cost[None], a[None], b[None]), k, repeats, budget) | shared for k in ks]


def measure_k(problem: Problem, k: int, repeats: int, budget: float) -> dict:
    cost, a = problem.cost[0], problem.a[0]
    row = {"k": k}
    for label, max_iter in (("nmkit", 1000), ("nmkit500", 500)):  # default cap, and POT's cap
        config = OTConfig(cost="given.npy", k=k, gamma=GAMMA, tol=TOL, max_iter=max_iter)
        result = transport(config, problem)
        row[label], _ = median_seconds(lambda config=config: transport(config, problem), repeats, budget)
        row[f"{label}_objective"] = result.objective[0]
        row[f"{label}_cost"] = result.cost[0]
        row[f"{label}_nnz"] = result.max_nnz_per_column
        row[f"{label}_row_err"] = result.row_marginal_error
    start = time.perf_counter()
    pot_plan, row["pot_objective"] = pot_sparse(cost, a, problem.b[0], k)
    row["pot"] = time.perf_counter() - start
    row["pot_cost"] = float((pot_plan * cost).sum())
    row["pot_nnz"] = int((pot_plan > 0).sum(0).max())
    row["pot_row_err"] = float(np.abs(pot_plan.sum(1) - a).sum())
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 500, 1000, 2000])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=20.0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    rows = [row for n in args.n for row in measure(n, args.k, args.repeats, args.budget)]
    table = [[str(r["n"]), str(r["k"]), f"{r['pot']:.2f}", f"{r['nmkit']:.3f} ({r['pot'] / r['nmkit']:.1f}x)",
              f"{r['nmkit500']:.3f} ({r['pot'] / r['nmkit500']:.1f}x)",
              f"{r['nmkit_objective']:.7f} / {r['nmkit500_objective']:.7f} / {r['pot_objective']:.7f}",
              f"{r['emd']:.3f} ({r['emd'] / r['nmkit']:.2f}x)", f"{r['sinkhorn']:.3f}",
              f"{r['nmkit_cost'] / r['exact']:.4f} / {r['pot_cost'] / r['exact']:.4f} / {r['sinkhorn_cost']:.3f}",
              f"{r['nmkit_nnz']} / {r['pot_nnz']}", f"{r['nmkit_row_err']:.3f} / {r['pot_row_err']:.3f}"]
             for r in rows]
    print_table(f"optimal-transport, Gaussian clouds, gamma = {GAMMA}, tol = {TOL} (seconds; speed-up vs POT)",
                ["n", "k", "POT sparse (500 it)", "nmkit (1000 it)", "nmkit (500 it)",
                 "dual objective: nmkit 1000 / 500 / POT", "ot.emd (emd/nmkit)", "sinkhorn 1e-2",
                 "cost / exact: nmkit / POT / sinkhorn", "max nnz/col nmkit / POT", "row marginal L1 nmkit / POT"],
                table)
    return rows


if __name__ == "__main__":
    main()
