"""nmkit robust-opt: ML-CCG (Neur2RO) against exact CCG and the nominal solution on the robust knapsack.

One value network is trained on sampled instances (n in the range of the test sizes, every correlation type);
then for each test instance (sizes x correlations x h x seeds) exact CCG (with a time limit), ML-CCG and the
nominal decision (best for xi = 0, the deterministic problem) are all scored by the exact worst case. Reported:
median and mean relative error to exact CCG's answer (its bound where it timed out), and times, with the one-off
data and training cost separately.

    python -m benchmarks.robust_opt [--sizes 10 15 20] [--h 40 80] [--seeds 1 2] [--time-limit 120]
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
from nmkit.core.robust.config import RobustConfig
from nmkit.core.robust.knapsack import exact_ccg, first_stage_cost, main_problem, worst_case
from nmkit.core.robust.mlccg import ml_ccg
from nmkit.core.robust.network import FeatureScaler, SetEncoder


def nominal_profit(instance: instances.Knapsack) -> float:
    """The deterministic solution (only the nominal scenario), scored by its exact worst case."""
    x, _ = main_problem(instance, [np.zeros(instance.n)], 60.0)
    return -(first_stage_cost(instance, x) + worst_case(instance, x).value)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 15, 20])
    parser.add_argument("--h", type=float, nargs="+", default=[40.0, 80.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--correlations", nargs="+", default=list(instances.CORRELATIONS))
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args(argv)
    config = build_config(RobustConfig, [("benchmark", {"action": "train", "sample": args.sample,
                                                        "n_range": [min(args.sizes), max(args.sizes)],
                                                        "epochs": args.epochs, "evaluate": 0,
                                                        "time_limit": args.time_limit}, None)])
    summary, model = learned.train(config)
    net = SetEncoder()
    net.load_state_dict(model["state_dict"])
    scaler = FeatureScaler(model["scaler_low"].numpy(), model["scaler_high"].numpy())
    rows = []
    for n in args.sizes:
        for correlation in args.correlations:
            for h in args.h:
                for seed in args.seeds:
                    instance = instances.generate_knapsack(n, correlation, h, 0.5, 0.1,
                                                           np.random.default_rng(1000 * seed + n))
                    exact = exact_ccg(instance, time_limit=args.time_limit)
                    ml = ml_ccg(instance, net.eval(), scaler, time_limit=args.time_limit)
                    start = time.perf_counter()
                    nominal = nominal_profit(instance)
                    reference = exact.objective
                    rows.append({"n": n, "correlation": correlation, "h": h, "seed": seed,
                                 "exact_seconds": exact.seconds, "exact_timed_out": exact.timed_out,
                                 "ml_seconds": ml.seconds, "nominal_seconds": time.perf_counter() - start,
                                 "ml_error": (reference - ml.objective) / abs(reference),
                                 "nominal_error": (reference - nominal) / abs(reference)})
    table = []
    for n in args.sizes:
        for correlation in args.correlations:
            group = [r for r in rows if r["n"] == n and r["correlation"] == correlation]
            table.append([str(n), correlation, f"{statistics.median(r['ml_error'] for r in group):.2%}",
                          f"{statistics.mean(r['ml_error'] for r in group):.2%}",
                          f"{statistics.median(r['nominal_error'] for r in group):.2%}",
                          f"{statistics.median(r['exact_seconds'] for r in group):.2f}"
                          + f" ({sum(r['exact_timed_out'] for r in group)} at limit)",
                          f"{statistics.median(r['ml_seconds'] for r in group):.2f}"])
    print_table(f"robust knapsack (delta 0.5, Gamma 0.1 n, h {args.h}, seeds {args.seeds}): relative error to exact "
                "CCG's answer, all answers scored by the exact worst case",
                ["n", "correlation", "ML-CCG median", "ML-CCG mean", "nominal median", "exact CCG s (median)",
                 "ML-CCG s (median)"], table,
                note=f"one-off: {summary['second_stage_solves']:,} second-stage solves in "
                     f"{summary['data_seconds']:.0f} s, training {summary['train_seconds']:.0f} s "
                     f"(validation MAE {summary['validation_mae']:.3f})")
    return {"rows": rows, "training": {k: v for k, v in summary.items() if k != "evaluation"}}


if __name__ == "__main__":
    main()
