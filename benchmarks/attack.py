"""nmkit attack on digits: QuadAttacK vs CW^K vs AD, and the batched QP solver's throughput.

1. Zoo MLP and CNN trained on the digits training split; the first ``--count`` correctly classified
   test images; random ordered targets (seeded, the same for every method); K in ``--k``; budgets
   (binary-search steps x iterations) in ``--budgets``; the same AdamW learning rate for all methods.
   Reported: attack success rate (exact ordered top-K) and mean L2 of the successful perturbations.
   torchattacks is not part of this comparison: it needs torchvision, which does not import beside
   the CPU torch wheel used here (and it covers K = 1 only).
2. QP: one batch of projections onto ordered top-K polytopes (the issue's B=256, C=1000, d=512, K=20 by
   default), nmkit's batched active-set solver against per-instance solvers on the same QPs: quadprog
   (Goldfarb-Idnani, compiled) and SciPy's SLSQP; feasibility and objective checked against quadprog.

    python -m benchmarks.attack [--count 300] [--k 1 2 3 5] [--budgets 1x30 1x60 9x30]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import quadprog
import scipy.optimize
import torch
from torch import nn

from benchmarks.harness import median_seconds, print_table
from nmkit.core import models
from nmkit.core.attack import AttackConfig
from nmkit.core.attack.qp import ordered_topk_constraints, project
from nmkit.core.attack.run import SplitModel, attack, energies, random_targets


class TinyViT(nn.Module):
    """A ViT-style classifier for 28x28 images: 7x7 patches as 16 tokens, a learned position embedding, two
    pre-norm encoder layers, mean pooling, a Linear head."""

    def __init__(self, width: int = 48, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(49, width)
        self.position = nn.Parameter(torch.zeros(1, 16, width))
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = x.reshape(-1, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(-1, 16, 49)
        return self.head(self.norm(self.encoder(self.embed(patches) + self.position)).mean(1))


def trained(architecture: str, data: str, epochs: int = 10) -> tuple[nn.Module, float]:
    """A zoo model, or the TinyViT (``vit``), trained on the built-in data's training split."""
    if architecture != "vit":
        return models.train_on_digits(architecture, seed=0, data=data, epochs=epochs)
    torch.manual_seed(0)
    return models.fit(TinyViT(), 28, data, epochs=epochs, seed=0, lr=2e-3)


def attack_rows(architecture: str, count: int, ks: list[int], budgets: list[str], lr: float, data: str = "digits",
                methods: tuple[str, ...] = ("quadattack", "cwk", "ad")) -> list[dict]:
    model, accuracy = trained(architecture, data)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    split = SplitModel(model, None)
    x, labels = models.digits_tensors("test", 28 if architecture == "vit" else models.INPUT_SIDE[architecture], data)
    with torch.no_grad():
        correct = split(x)[1].argmax(1) == labels
    x, labels = x[correct][:count], labels[correct][:count]
    rows = []
    for k in ks:
        targets = random_targets(labels, k, 10, seed=0)
        for budget in budgets:
            row = {"model": f"{architecture} ({accuracy:.1%})", "k": k, "budget": budget}
            for method in methods:
                config = AttackConfig(k=k, method=method, budget=budget, lr=lr)
                start = time.perf_counter()
                adversarial, success = attack(split, x, targets, dataclasses.replace(config), None)
                row[method] = (float(success.float().mean()), energies(adversarial - x, success)["l2"].get("mean"),
                               (time.perf_counter() - start) / len(x))
            rows.append(row)
    return rows


def qp_throughput(batch: int, classes: int, dim: int, k: int, slsqp_count: int = 16) -> dict:
    """Seconds per projection: nmkit's batched solver on the whole batch (median of 3 after a warm-up, building
    the polytopes included); quadprog (Goldfarb-Idnani dual active
    set, compiled) on every instance one by one; SciPy's SLSQP on the first ``slsqp_count`` (it is slow)."""
    torch.manual_seed(0)
    weight = torch.randn(classes, dim, dtype=torch.float64) / dim**0.5
    bias = torch.randn(classes, dtype=torch.float64) * 0.1
    targets = torch.stack([torch.randperm(classes)[:k] for _ in range(batch)])
    z0 = torch.randn(batch, dim, dtype=torch.float64)
    polytope = ordered_topk_constraints(weight, bias, targets, 0.2)
    ours = project(z0, polytope)
    total, _ = median_seconds(lambda: project(z0, ordered_topk_constraints(weight, bias, targets, 0.2)), 3)
    seconds = {"nmkit": total / batch}
    g, h = (t.numpy() for t in polytope.dense())
    start = time.perf_counter()
    goldfarb = [quadprog.solve_qp(np.eye(dim), z, gi.T.copy(), hi)[0] for z, gi, hi in zip(z0.numpy(), g, h,
                                                                                               strict=True)]
    seconds["quadprog"] = (time.perf_counter() - start) / batch
    start = time.perf_counter()
    for z, gi, hi in zip(z0.numpy()[:slsqp_count], g, h, strict=False):
        scipy.optimize.minimize(lambda v, z=z: 0.5 * np.sum((v - z) ** 2), z, jac=lambda v, z=z: v - z,
                                constraints=[{"type": "ineq", "fun": lambda v, gi=gi, hi=hi: gi @ v - hi,
                                              "jac": lambda v, gi=gi: gi}],
                                method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    seconds["slsqp"] = (time.perf_counter() - start) / min(batch, slsqp_count)
    violation = float(np.max(h - (g @ ours.numpy()[..., None])[..., 0]))
    distance = lambda z: np.sum((np.asarray(z) - z0.numpy()) ** 2, 1)  # noqa: E731
    gap = float(np.max(np.abs(distance(ours.numpy()) - distance(goldfarb)) / (1 + distance(goldfarb))))
    active = float(np.mean(np.sum(np.abs(g @ ours.numpy()[..., None] - h[..., None])[..., 0] < 1e-7, 1)))
    return {"shape": f"B={batch}, C={classes}, d={dim}, K={k}", "seconds_per_instance": seconds,
            "violation": violation, "relative_objective_gap": gap, "mean_active_constraints": active}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--budgets", nargs="+", default=["1x30", "1x60", "9x30"])
    parser.add_argument("--architectures", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--lr", type=float, default=AttackConfig().lr)
    parser.add_argument("--qp", type=int, nargs=4, default=[256, 1000, 512, 20], metavar=("B", "C", "D", "K"))
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--methods", nargs="+", default=["quadattack", "cwk", "ad"])
    parser.add_argument("--skip-qp", action="store_true")
    args = parser.parse_args(argv)
    rows = [r for a in args.architectures
            for r in attack_rows(a, args.count, args.k, args.budgets, args.lr, args.data, tuple(args.methods))]
    cell = lambda v: f"{v[0]:.1%} / {v[1]:.3f}" if v[1] is not None else f"{v[0]:.1%} / -"  # noqa: E731
    print_table(f"attack on {args.data} ({args.count} images, lr {args.lr}): success rate / mean L2 of successes",
                ["model (test acc.)", "K", "budget", *args.methods, f"s per image ({args.methods[0]})"],
                [[r["model"], str(r["k"]), r["budget"], *(cell(r[m]) for m in args.methods),
                  f"{r[args.methods[0]][2]:.4f}"] for r in rows])
    if args.skip_qp:
        return {"rows": rows}
    qp = qp_throughput(*args.qp)
    per = qp["seconds_per_instance"]
    print_table(f"QP: projections onto ordered top-K polytopes ({qp['mean_active_constraints']:.0f} active constraints"
                " on average), ms per instance", ["problem", "nmkit batched", "quadprog one by one", "SLSQP one by one",
                                                  "vs quadprog", "vs SLSQP", "max violation", "max rel. objective gap"],
                [[qp["shape"], f"{per['nmkit'] * 1e3:.2f}", f"{per['quadprog'] * 1e3:.1f}", f"{per['slsqp'] * 1e3:.0f}",
                  f"{per['quadprog'] / per['nmkit']:.1f}x", f"{per['slsqp'] / per['nmkit']:.0f}x",
                  f"{qp['violation']:.1e}", f"{qp['relative_objective_gap']:.1e}"]])
    return {"rows": rows, "qp": qp}


if __name__ == "__main__":
    main()
