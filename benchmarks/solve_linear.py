"""nmkit solve-linear: DCDM beside CG, Jacobi-PCG, IC(0)-PCG and PyAMG's smoothed-aggregation AMG-PCG.

One network per dimension is trained on the smallest grid (2-D Poisson, 3-D Poisson, and 2-D with a sphere
obstacle) and applied to every size (it is fully convolutional), so the iteration counts at the larger grids
measure transfer. Every method solves the same random right-hand side from x0 = 0 to the same true relative
residual; iterations, setup and solve time per method. Training time is reported separately.

    python -m benchmarks.solve_linear [--sizes2d 64 128 256] [--sizes3d 32 64] [--steps 600]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.harness import print_table
from nmkit.core.linear.config import LinearConfig
from nmkit.core.linear.run import run
from nmkit.core.recipe import build_config

METHODS = ["cg", "pcg-jacobi", "pcg-ic", "amg", "dcdm"]


def train_model(folder: Path, problem: str, n: int, obstacle: str, steps: int, levels: int) -> dict:
    config = build_config(LinearConfig, [("benchmark", {"action": "train", "problem": problem, "n": n,
                                                        "obstacle": obstacle, "steps": steps, "levels": levels,
                                                        "batch_size": 16 if problem.endswith("2d") else 8}, None)])
    start = time.perf_counter()
    result = run(config)
    torch.save(result.model, folder / "model.pt")
    return {"seconds": time.perf_counter() - start, **result.training}


def solve_rows(folder: Path, problem: str, sizes: list[int], obstacle: str, tols: list[float]) -> list[dict]:
    rows = []
    for n in sizes:
        for tol in tols:
            config = build_config(LinearConfig, [("benchmark", {"action": "solve", "problem": problem, "n": n,
                                                                "obstacle": obstacle, "model": str(folder),
                                                                "tol": tol, "max_iter": 5000}, None)])
            result = run(config)
            rows.append({"problem": problem + ("+" + obstacle if obstacle != "none" else ""), "n": n, "tol": tol,
                         "solves": {s["method"]: s for s in result.solves}})
    return rows


def real_systems(aniso_side: int) -> dict[str, tuple]:
    """SPD systems nobody here wrote, with the grid their unknowns live on (None: an unstructured mesh): PyAMG's
    stored airfoil and elastic-bar examples, PyAMG's rotated anisotropic diffusion stencil (epsilon 1e-3), and a
    diffusion coefficient spanning a factor 1e4 (nmkit's diffusion2d)."""
    import numpy as np
    import pyamg

    from nmkit.core.linear import problems

    stencil = pyamg.gallery.diffusion_stencil_2d(epsilon=1e-3, theta=np.pi / 6, type="FE")
    contrast = problems.build("diffusion2d", 64, contrast=1e4)
    return {"airfoil (PyAMG)": (pyamg.gallery.load_example("airfoil")["A"], None),
            "elastic bar (PyAMG)": (pyamg.gallery.load_example("bar")["A"], None),
            f"anisotropic eps 1e-3 {aniso_side}^2": (pyamg.gallery.stencil_grid(stencil, (aniso_side,) * 2),
                                                    (aniso_side,) * 2),
            "diffusion contrast 1e4 64^2": (contrast.matrix, (64, 64))}


def real_rows(folder: Path, aniso_side: int, tol: float = 1e-8) -> list[dict]:
    """Every method to ``tol`` on :func:`real_systems`; DCDM with the 2-D Poisson network where a grid exists."""
    import numpy as np

    from nmkit.core.linear import solve
    from nmkit.core.linear.run import load_model

    net, _ = load_model(folder)
    rows = []
    for name, (matrix, grid) in real_systems(aniso_side).items():
        b = np.random.default_rng(0).standard_normal(matrix.shape[0])
        solves = {}
        for method in METHODS:
            if method == "dcdm" and grid is None:
                continue
            _, info = solve(matrix, b, method=method, rtol=tol, maxiter=20_000, model=net, grid=grid)
            solves[method] = {"iterations": info.iterations, "converged": info.converged,
                              "true_relative_residual": info.true_relative_residual}
        rows.append({"system": name, "unknowns": matrix.shape[0], "tol": tol, "solves": solves})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes2d", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--sizes3d", type=int, nargs="*", default=[32, 64])
    parser.add_argument("--obstacle-sizes", type=int, nargs="*", default=[64, 128])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-6])
    parser.add_argument("--aniso-side", type=int, default=100, help="side of the anisotropic real-system grid")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rows, training, real = [], [], []
    cases = [("poisson2d", args.sizes2d, "none", 3), ("poisson3d", args.sizes3d, "none", 2),
             ("poisson2d", args.obstacle_sizes, "sphere", 3)]
    for problem, sizes, obstacle, levels in cases:
        if not sizes:
            continue
        with tempfile.TemporaryDirectory() as folder:
            trained = train_model(Path(folder), problem, sizes[0], obstacle, args.steps, levels)
            training.append({"problem": problem, "obstacle": obstacle, "n": sizes[0], **trained})
            rows += solve_rows(Path(folder), problem, sizes, obstacle, args.tols)
            if problem == "poisson2d" and obstacle == "none" and importlib.util.find_spec("pyamg") is not None:
                real = real_rows(Path(folder), args.aniso_side)
    cell = lambda s: f"{s['iterations']}" + ("" if s["converged"] else " (no)")  # noqa: E731
    print_table("solve-linear: iterations to the tolerance (true relative residual), random right-hand side",
                ["problem", "n", "tol", *METHODS, "dcdm / cg"],
                [[r["problem"], str(r["n"]), f"{r['tol']:g}", *(cell(r["solves"][m]) for m in METHODS),
                  f"{r['solves']['dcdm']['iterations'] / r['solves']['cg']['iterations']:.2f}"] for r in rows])
    print_table("solve-linear: setup + solve seconds (2 threads)", ["problem", "n", "tol", *METHODS],
                [[r["problem"], str(r["n"]), f"{r['tol']:g}",
                  *(f"{r['solves'][m]['setup_seconds']:.3f} + {r['solves'][m]['solve_seconds']:.3f}" for m in METHODS)]
                 for r in rows])
    print_table("training (one-off, on the smallest grid)", ["problem", "n", "steps", "seconds", "loss first -> last"],
                [[t["problem"] + ("+" + t["obstacle"] if t["obstacle"] != "none" else ""), str(t["n"]),
                  str(t["steps"]), f"{t['seconds']:.1f}", f"{t['loss_first']:.3f} -> {t['loss_last_50_mean']:.3f}"]
                 for t in training])
    print_table("solve-linear: systems from outside, iterations to 1e-8 (DCDM: the 2-D Poisson network, where "
                "the unknowns have a grid)", ["system", "unknowns", *METHODS],
                [[r["system"], f"{r['unknowns']:,}", *(cell(r["solves"][m]) if m in r["solves"] else "n/a"
                                                      for m in METHODS)] for r in real])
    return {"rows": rows, "training": training, "real": real}


if __name__ == "__main__":
    main()
