"""Optimal transport at scale: ``nmkit optimal-transport --problem gaussians --size N`` (2-D Gaussian clouds,
k = 2, the defaults) as its own process under /usr/bin/time: wall seconds, peak resident memory, iterations,
whether the stall test fired, and the row-marginal error; beside POT's ``ot.smooth`` (sparsity-constrained
semi-dual, same gamma) where it runs in reasonable time (N <= ``--pot-max``).

Sizes past what converges in the run's patience take ``--max-iter`` (per size, ``N:ITERS``) and are reported as
seconds per iteration with their memory: point clouds are solved without the cost matrix, so memory stays
O(N (d + k)).

    python -m benchmarks.ot_scale [--sizes 2000 5000 10000 20000 100000] [--cap 20000:300 100000:5]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import print_table

NMKIT = [sys.executable, "-c", "from nmkit.cli.app import main; main()"]


def _nmkit(size: int, cap: int | None, out: Path) -> dict:
    command = [*NMKIT, "optimal-transport", "--problem", "gaussians", "--size", str(size), "--quiet", "--json"]
    command += ["--max-iter", str(cap)] if cap else []
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=True)
    wall, rss = done.stderr.strip().splitlines()[-1].split()
    result = json.loads(done.stdout)["result"]
    return {"wall": float(wall), "rss_mb": int(rss) / 1024, **result}


def _pot(size: int) -> float:
    script = f"""
import time, numpy as np, ot
from nmkit.core.ot import OTConfig
from nmkit.core.ot.problems import build_problem
p = build_problem(OTConfig(problem="gaussians", size={size}))
cost = p.dense_cost(1)[0]
cost = cost / cost.max()
start = time.perf_counter()
ot.smooth.smooth_ot_semi_dual(p.a[0], p.b[0], cost, 0.1, reg_type="sparsity_constrained", max_nz=2)
print(time.perf_counter() - start)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000, 20000, 100000])
    parser.add_argument("--cap", nargs="*", default=["20000:300", "100000:5"])
    parser.add_argument("--pot-max", type=int, default=2000)
    args = parser.parse_args(argv)
    caps = {int(n): int(i) for n, i in (c.split(":") for c in args.cap)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            run = _nmkit(size, caps.get(size), Path(tmp))
            run |= {"size": size, "capped": size in caps, "pot": _pot(size) if size <= args.pot_max else None}
            rows.append(run)
    print_table("optimal-transport, 2-D Gaussian clouds, k = 2, whole process (defaults unless capped)",
                ["n", "iterations", "converged", "wall s", "s / iteration", "peak RSS MB", "row-marginal L1",
                 "POT semi-dual s"],
                [[f"{r['size']:,}" + (" (capped)" if r["capped"] else ""), str(r["iterations"]),
                  "yes" if r["converged"] else "no", f"{r['wall']:.1f}", f"{r['seconds'] / r['iterations']:.3f}",
                  f"{r['rss_mb']:.0f}", f"{r['row_marginal_error']:.3f}",
                  "-" if r["pot"] is None else f"{r['pot']:.1f}"] for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
