"""nmkit attack on digits: QuadAttacK vs CW^K vs AD, and the batched QP solver's throughput.

1. Zoo MLP and CNN trained on the digits training split; the first ``--count`` correctly classified
   test images; random ordered targets (seeded, the same for every method); K in ``--k``; budgets
   (binary-search steps x iterations) in ``--budgets``; the same AdamW learning rate for all methods.
   Reported: attack success rate (exact ordered top-K) and mean L2 of the successful perturbations.
   torchattacks is not part of this comparison: it needs torchvision, which does not import beside
   the CPU torch wheel used here (and it covers K = 1 only).
2. QP: one batch of projections onto ordered top-K polytopes, nmkit's batched active-set solver
   against SciPy's SLSQP solving the same QPs one by one; both checked for feasibility.

    python -m benchmarks.attack [--count 300] [--k 1 2 3 5] [--budgets 1x30 1x60 9x30]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import scipy.optimize
import torch

from benchmarks.harness import print_table
from nmkit.core import models
from nmkit.core.attack import AttackConfig
from nmkit.core.attack.qp import ordered_topk_constraints, project
from nmkit.core.attack.run import SplitModel, attack, energies, random_targets


def attack_rows(architecture: str, count: int, ks: list[int], budgets: list[str], lr: float) -> list[dict]:
    model, accuracy = models.train_on_digits(architecture, seed=0)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    split = SplitModel(model, None)
    x, labels = models.digits_tensors("test")
    with torch.no_grad():
        correct = split(x)[1].argmax(1) == labels
    x, labels = x[correct][:count], labels[correct][:count]
    rows = []
    for k in ks:
        targets = random_targets(labels, k, 10, seed=0)
        for budget in budgets:
            row = {"model": f"{architecture} ({accuracy:.1%})", "k": k, "budget": budget}
            for method in ("quadattack", "cwk", "ad"):
                config = AttackConfig(k=k, method=method, budget=budget, lr=lr)
                start = time.perf_counter()
                adversarial, success = attack(split, x, targets, dataclasses.replace(config), None)
                row[method] = (float(success.float().mean()), energies(adversarial - x, success)["l2"].get("mean"),
                               (time.perf_counter() - start) / len(x))
            rows.append(row)
    return rows


def qp_throughput(batch: int, classes: int, dim: int, k: int) -> dict:
    torch.manual_seed(0)
    weight = torch.randn(classes, dim, dtype=torch.float64) / dim**0.5
    bias = torch.randn(classes, dtype=torch.float64) * 0.1
    targets = torch.stack([torch.randperm(classes)[:k] for _ in range(batch)])
    z0 = torch.randn(batch, dim, dtype=torch.float64)
    g, h = ordered_topk_constraints(weight, bias, targets, 0.2)
    start = time.perf_counter()
    ours = project(z0, g, h)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = []
    for z, gi, hi in zip(z0.numpy(), g.numpy(), h.numpy(), strict=True):
        result = scipy.optimize.minimize(lambda v, z=z: 0.5 * np.sum((v - z) ** 2), z, jac=lambda v, z=z: v - z,
                                         constraints=[{"type": "ineq", "fun": lambda v, gi=gi, hi=hi: gi @ v - hi,
                                                       "jac": lambda v, gi=gi: gi}],
                                         method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
        reference.append(result.x)
    reference_seconds = time.perf_counter() - start
    violation = float((h - (g @ ours.unsqueeze(-1)).squeeze(-1)).max())
    distance = lambda z: np.sum((np.asarray(z) - z0.numpy()) ** 2, 1)  # noqa: E731
    gap = float(np.max(np.abs(distance(ours.numpy()) - distance(reference))))
    return {"shape": f"B={batch}, C={classes}, d={dim}, K={k}", "nmkit": ours_seconds, "slsqp": reference_seconds,
            "violation": violation, "objective_gap": gap}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--budgets", nargs="+", default=["1x30", "1x60", "9x30"])
    parser.add_argument("--architectures", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--lr", type=float, default=AttackConfig().lr)
    parser.add_argument("--qp", type=int, nargs=4, default=[128, 100, 64, 10], metavar=("B", "C", "D", "K"))
    args = parser.parse_args(argv)
    rows = [r for a in args.architectures for r in attack_rows(a, args.count, args.k, args.budgets, args.lr)]
    cell = lambda v: f"{v[0]:.1%} / {v[1]:.3f}" if v[1] is not None else f"{v[0]:.1%} / -"  # noqa: E731
    print_table(f"attack on digits ({args.count} images, lr {args.lr}): success rate / mean L2 of successes",
                ["model (test acc.)", "K", "budget", "quadattack", "cwk", "ad", "s per image (quad)"],
                [[r["model"], str(r["k"]), r["budget"], cell(r["quadattack"]), cell(r["cwk"]), cell(r["ad"]),
                  f"{r['quadattack'][2]:.4f}"] for r in rows])
    qp = qp_throughput(*args.qp)
    print_table("QP: batched projections", ["problem", "nmkit batched (s)", "SciPy SLSQP one by one (s)", "speed-up",
                                             "max violation", "max objective gap"],
                [[qp["shape"], f"{qp['nmkit']:.3f}", f"{qp['slsqp']:.2f}", f"{qp['slsqp'] / qp['nmkit']:.0f}x",
                  f"{qp['violation']:.1e}", f"{qp['objective_gap']:.1e}"]])
    return {"rows": rows, "qp": qp}


if __name__ == "__main__":
    main()
