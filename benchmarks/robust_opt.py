"""nmkit robust-opt: ML-CCG (Neur2RO; MILP, PGA and exact adversaries) against exact CCG and the nominal solution.

Per problem one value network is trained on sampled instances (n in the range of the test sizes; for the knapsack
every correlation type); then on each test instance exact CCG (with a time limit), ML-CCG with each adversary and
the nominal decision (best for xi = 0, the deterministic problem) are all scored by the exact worst case.
Reported: median and mean relative error to exact CCG's answer, and times, with the one-off data and training cost
separately.

    python -m benchmarks.robust_opt [--problems knapsack capital_budgeting] [--sizes 10 15 20] [--cb-sizes 10 20]
        [--h 40 80] [--seeds 1 2] [--adversaries milp pga exact] [--encoder auto] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.harness import print_table
from nmkit.core.recipe import build_config
from nmkit.core.robust import instances
from nmkit.core.robust import run as learned
from nmkit.core.robust.capital_budgeting import generate_capital_budget
from nmkit.core.robust.ccg import exact_ccg
from nmkit.core.robust.config import RobustConfig
from nmkit.core.robust.mlccg import ml_ccg
from nmkit.core.robust.problems import PROBLEMS


def nominal_profit(problem, instance) -> float:
    """The deterministic solution (only the nominal scenario), scored by its exact worst case."""
    x, _ = problem.main_problem(instance, [np.zeros(problem.uncertainty(instance).dim)], 60.0)
    return -problem.robust_cost(instance, x)


def test_instances(name: str, args) -> list[tuple[dict, object]]:
    if name == "capital_budgeting":
        return [({"n": n, "group": f"n {n}"}, generate_capital_budget(n, np.random.default_rng(1000 * seed + n)))
                for n in args.cb_sizes for seed in range(1, args.cb_count + 1)]
    return [({"n": n, "group": f"n {n} {correlation}"},
             instances.generate_knapsack(n, correlation, h, 0.5, 0.1, np.random.default_rng(1000 * seed + n)))
            for n in args.sizes for correlation in args.correlations for h in args.h for seed in args.seeds]


def run_problem(name: str, args) -> dict:
    problem = PROBLEMS[name]
    sizes = args.cb_sizes if name == "capital_budgeting" else args.sizes
    config = build_config(RobustConfig, [("benchmark", {
        "action": "train", "problem": name, "sample": args.sample, "n_range": [min(sizes), max(sizes)],
        "decisions": args.decisions, "scenarios": args.scenarios, "epochs": args.epochs, "evaluate": 0,
        "workers": args.workers, "encoder": args.encoder, "embed": args.embed, "post": args.post, "value": args.value,
        "time_limit": args.time_limit}, None)])
    summary, model = learned.train(config)
    rows = []
    for labels, instance in test_instances(name, args):
        exact = exact_ccg(problem, instance, time_limit=args.time_limit)
        reference = exact.objective
        row = {**labels, "exact_seconds": exact.seconds, "exact_timed_out": exact.timed_out}
        for adversary in args.adversaries:
            ml = ml_ccg(model, instance, adversary=adversary, time_limit=args.time_limit)
            row[f"ml_{adversary}_seconds"] = ml.seconds
            row[f"ml_{adversary}_error"] = (reference - ml.objective) / abs(reference)
        start = time.perf_counter()
        row["nominal_error"] = (reference - nominal_profit(problem, instance)) / abs(reference)
        row["nominal_seconds"] = time.perf_counter() - start
        rows.append(row)
    table = []
    for group in dict.fromkeys(r["group"] for r in rows):
        chosen = [r for r in rows if r["group"] == group]
        cells = [group]
        for adversary in args.adversaries:
            errors = [r[f"ml_{adversary}_error"] for r in chosen]
            cells += [f"{statistics.median(errors):.2%} / {statistics.mean(errors):.2%}",
                      f"{statistics.median(r[f'ml_{adversary}_seconds'] for r in chosen):.2f}"]
        cells += [f"{statistics.median(r['nominal_error'] for r in chosen):.2%}",
                  f"{statistics.median(r['exact_seconds'] for r in chosen):.2f}"
                  + f" ({sum(r['exact_timed_out'] for r in chosen)} at limit)"]
        table.append(cells)
    columns = ["instances"]
    for adversary in args.adversaries:
        columns += [f"ML-CCG {adversary} error median / mean", f"{adversary} s (median)"]
    print_table(f"{name}: relative error to exact CCG's answer over {len(rows)} instances, every answer scored by "
                "the exact worst case", columns + ["nominal error (median)", "exact CCG s (median)"], table,
                note=f"one-off: {summary['second_stage_solves']:,} second-stage solves in "
                     f"{summary['data_seconds']:.0f} s, training {summary['train_seconds']:.0f} s "
                     f"(validation MAE {summary['validation_mae']:.4f}, label std {summary['label_std']:.4f})")
    return {"rows": rows, "training": {k: v for k, v in summary.items() if k != "evaluation"}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 15, 20])
    parser.add_argument("--cb-sizes", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--cb-count", type=int, default=4, help="capital budgeting instances per size")
    parser.add_argument("--h", type=float, nargs="+", default=[40.0, 80.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--correlations", nargs="+", default=list(instances.CORRELATIONS))
    parser.add_argument("--adversaries", nargs="+", default=["milp", "pga", "exact"])
    parser.add_argument("--encoder", default="auto")
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--decisions", type=int, default=10)
    parser.add_argument("--scenarios", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--embed", type=int, nargs=2, default=[32, 16])
    parser.add_argument("--post", type=int, nargs=2, default=[64, 8])
    parser.add_argument("--value", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args(argv)
    return {name: run_problem(name, args) for name in args.problems}


if __name__ == "__main__":
    main()
