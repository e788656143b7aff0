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
from nmkit.core.ot import OTConfig, Problem, build_problem, transport

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
    cost, a, b = problem.cost[0] / problem.cost[0].max(), problem.a[0], problem.b[0]
    scaled = Problem(cost[None], a[None], b[None])
    exact = ot.emd2(a, b, cost)
    emd_seconds, _ = median_seconds(lambda: ot.emd(a, b, cost), repeats, budget)
    sinkhorn_plan = ot.sinkhorn(a, b, cost, 0.01, method="sinkhorn_log")
    sinkhorn_seconds, _ = median_seconds(lambda: ot.sinkhorn(a, b, cost, 0.01, method="sinkhorn_log"), 1, budget)
    rows = []
    for k in ks:
        config = OTConfig(cost="given.npy", k=k, gamma=GAMMA, tol=TOL)
        ours = transport(config, scaled)
        ours_seconds, _ = median_seconds(lambda: transport(config, scaled), repeats, budget)
        start = time.perf_counter()
        pot_plan, pot_objective = pot_sparse(cost, a, b, k)
        pot_seconds = time.perf_counter() - start
        rows.append({
            "n": n, "k": k, "nmkit": ours_seconds, "pot": pot_seconds, "emd": emd_seconds, "sinkhorn": sinkhorn_seconds,
            "speedup": pot_seconds / ours_seconds, "emd_ratio": emd_seconds / ours_seconds,
            "nmkit_cost": ours.cost[0] / exact, "pot_cost": float((pot_plan * cost).sum() / exact),
            "sinkhorn_cost": float((sinkhorn_plan * cost).sum() / exact),
            "nmkit_objective": ours.objective[0], "pot_objective": pot_objective,
            "nmkit_nnz": ours.max_nnz_per_column, "pot_nnz": int((pot_plan > 0).sum(0).max()),
            "nmkit_row_err": ours.row_marginal_error, "pot_row_err": float(np.abs(pot_plan.sum(1) - a).sum()),
            "nmkit_iterations": ours.iterations,
        })
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 500, 1000, 2000])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=20.0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    rows = [row for n in args.n for row in measure(n, args.k, args.repeats, args.budget)]
    table = [[str(r["n"]), str(r["k"]), f"{r['nmkit']:.3f}", f"{r['pot']:.2f}", f"{r['speedup']:.1f}x",
              f"{r['emd']:.3f} ({r['emd_ratio']:.2f}x)", f"{r['sinkhorn']:.3f}",
              f"{r['nmkit_cost']:.4f} / {r['pot_cost']:.4f} / {r['sinkhorn_cost']:.3f}",
              f"{r['nmkit_objective']:.7f} / {r['pot_objective']:.7f}", f"{r['nmkit_nnz']} / {r['pot_nnz']}",
              f"{r['nmkit_row_err']:.3f} / {r['pot_row_err']:.3f}"] for r in rows]
    print_table(f"optimal-transport, Gaussian clouds, gamma = {GAMMA}, tol = {TOL} (seconds)",
                ["n", "k", "nmkit", "POT sparse", "speed-up", "ot.emd (emd/nmkit)", "sinkhorn 1e-2",
                 "cost / exact: nmkit / POT / sinkhorn", "dual objective nmkit / POT", "max nnz/col",
                 "row marginal L1"], table)
    return rows


if __name__ == "__main__":
    main()
