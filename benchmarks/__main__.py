"""``python -m benchmarks [name ...]`` runs the named benchmarks (default: all)."""

import importlib
import sys

BENCHMARKS = ["hamming", "optimal_transport", "relax_sor", "compress_pc", "attack", "prune", "solve_linear",
              "robust_opt", "train_snn", "startup", "whole_process", "concurrency", "scale_out", "prune_checkpoint",
              "ot_scale"]

for name in sys.argv[1:] or BENCHMARKS:
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    importlib.import_module(f"benchmarks.{name}").main([])
