"""nmkit prune: accuracy vs sparsity for every method, the global-MP call against torch.nn.utils.prune, and
what unstructured sparsity buys at inference on CPU.

1. Zoo MLP and CNN trained on the digits training split (one model per seed); each method prunes it one-shot
   to each sparsity; accuracy on the 400 test images right after pruning and after ``--fine-tune`` epochs of
   masked fine-tuning (Adam 1e-3), mean over ``--seeds``. global-mp+mt keeps 40 weights in every layer.
2. One global magnitude prune call on a stack of Linear layers with >= 20M weights: nmkit (radix-select
   threshold, masks folded into the weights) against ``torch.nn.utils.prune.global_unstructured`` with
   ``L1Unstructured``; median time in this process, peak extra memory (RSS high-water mark above the loaded
   model) in a fresh process each.
3. CPU latency of that stack dense vs its Linear weights as CSR (torch.sparse.mm) at 90/95/99% sparsity,
   batch 1 and 256, 2 threads: reported as measured.

    python -m benchmarks.prune [--seeds 0 1 2] [--sparsities 0.5 0.8 0.9 0.95 0.99] [--width 2048 --depth 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import warnings

import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from benchmarks.harness import median_seconds, print_table
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.masks import global_masks
from nmkit.core.prune.run import run
from nmkit.core.recipe import build_config

METHODS = {"random": {}, "layer-mp": {}, "global-mp": {}, "global-mp+mt": {"min_per_layer": 40}, "lamp": {},
           "sap": {"sap": {"scope": "neuron", "gamma": 3.0, "iterations": 30}}, "rd": {}, "mfac": {}}


def accuracy_rows(architecture: str, sparsities: list[float], seeds: list[int], fine_tune: float,
                  methods: list[str], data: str = "digits", train_epochs: int = 40) -> list[dict]:
    """Every method on the same trained model per seed (trained once, saved as a state dict)."""
    from nmkit.core import models

    rows, dense = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            model, dense[seed] = models.train_on_digits(architecture, epochs=train_epochs, seed=seed, data=data)
            torch.save(model.state_dict(), f"{folder}/{seed}.pt")
        for name in methods:
            extra = METHODS[name]
            per_seed = []
            for seed in seeds:
                values = {"method": name.split("+")[0], "architecture": architecture, "final_sparsity": sparsities,
                          "fine_tune_epochs": fine_tune, "seed": seed, "data": data, "model": f"{folder}/{seed}.pt",
                          **extra}
                per_seed.append(run(build_config(PruneConfig, [("benchmark", values, None)])).runs)
            rows += _mean_rows(architecture, name, sparsities, per_seed, fine_tune, statistics.mean(dense.values()))
    return rows


def _mean_rows(architecture: str, name: str, sparsities: list[float], per_seed: list, fine_tune: float,
               dense: float) -> list[dict]:
    """One row per sparsity: the means over seeds of what each seed's run reached."""
    rows = []
    for i, target in enumerate(sparsities):
        runs = [r[i] for r in per_seed]
        rows.append({"architecture": architecture, "method": name, "target": target, "dense": dense,
                     "sparsity": statistics.mean(r.sparsity for r in runs),
                     "one_shot": statistics.mean(r.accuracy_pruned for r in runs),
                     "fine_tuned": statistics.mean(r.accuracy_fine_tuned for r in runs) if fine_tune else None,
                     "collapsed": sum(bool(r.collapsed_layers) for r in runs)})
    return rows


def _cell(row: dict) -> str:
    text = f"{row['one_shot']:.1%}" + (f" / {row['fine_tuned']:.1%}" if row["fine_tuned"] is not None else "")
    return text + (f" @{row['sparsity']:.2f}" if abs(row["sparsity"] - row["target"]) > 5e-3 else "")


def linear_stack(width: int, depth: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])


def prune_call(implementation: str, model: nn.Sequential, sparsity: float) -> None:
    linears = [m for m in model if isinstance(m, nn.Linear)]
    if implementation == "nmkit":
        weights = [m.weight for m in linears]
        masks = global_masks(weights, round(sparsity * sum(w.numel() for w in weights)), absolute=True)
        for weight, mask in zip(weights, masks, strict=True):
            weight.mul_(mask)
    else:
        torch_prune.global_unstructured([(m, "weight") for m in linears], pruning_method=torch_prune.L1Unstructured,
                                        amount=sparsity)


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":")) / 1024


def child_peak(implementation: str, width: int, depth: int, sparsity: float) -> dict:
    """Run in a fresh process (Linux): peak RSS during one prune call above the RSS with the model loaded. The
    high-water mark is reset first (clear_refs 5); getrusage's ru_maxrss would carry the parent's over exec."""
    model = linear_stack(width, depth)
    with torch.no_grad():
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before = _status_mb("VmRSS")
        prune_call(implementation, model, sparsity)
        after = _status_mb("VmHWM")
    return {"extra_peak_mb": after - before}


def call_rows(width: int, depth: int, sparsity: float) -> dict:
    model = linear_stack(width, depth)
    weights = sum(m.weight.numel() for m in model)
    result = {"weights": weights, "model_mb": weights * 4 / 2**20}
    for implementation in ("nmkit", "torch"):
        copies = [copy.deepcopy(model) for _ in range(4)]  # warm-up + 3 timed calls, each on untouched weights
        with torch.no_grad():
            seconds, _ = median_seconds(lambda i=implementation, c=copies: prune_call(i, c.pop(), sparsity), 3)
        peak = subprocess.run([sys.executable, "-m", "benchmarks.prune", "--child", implementation, str(width),
                               str(depth), str(sparsity)], capture_output=True, text=True, check=True)
        result[implementation] = {"seconds": seconds, **json.loads(peak.stdout)}
    return result


def latency_rows(width: int, depth: int, sparsities: list[float], batches: list[int]) -> list[dict]:
    torch.set_num_threads(2)
    rows = []
    for sparsity in sparsities:
        model = linear_stack(width, depth)
        with torch.no_grad():
            prune_call("nmkit", model, sparsity)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # sparse CSR support is in beta
                sparse = [(m.weight.to_sparse_csr(), m.bias) for m in model]
            for batch in batches:
                x = torch.randn(batch, width)

                def forward_sparse(x=x, sparse=sparse):
                    h = x
                    for weight, bias in sparse:
                        h = torch.sparse.mm(weight, h.T).T + bias
                    return h

                dense, _ = median_seconds(lambda x=x, model=model: model(x), 5)
                csr, _ = median_seconds(forward_sparse, 5)
                rows.append({"sparsity": sparsity, "batch": batch, "dense_ms": dense * 1e3, "csr_ms": csr * 1e3})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.95, 0.99])
    parser.add_argument("--architectures", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--train-epochs", type=int, default=40)
    parser.add_argument("--accuracy-only", action="store_true", help="skip the prune-call and latency parts")
    parser.add_argument("--fine-tune", type=float, default=5.0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--depth", type=int, default=5)
    args = parser.parse_args(argv)
    if args.child:
        implementation, width, depth, sparsity = args.child
        print(json.dumps(child_peak(implementation, int(width), int(depth), float(sparsity))))
        return {}
    rows = [r for a in args.architectures
            for r in accuracy_rows(a, args.sparsities, args.seeds, args.fine_tune, args.methods, args.data,
                                   args.train_epochs)]
    dense = {a: next(r["dense"] for r in rows if r["architecture"] == a) for a in args.architectures}
    print_table(f"prune on {args.data}: test accuracy one-shot / after {args.fine_tune:g} fine-tune epochs, mean of "
                f"seeds {args.seeds}", ["model (dense)", "method", *(f"{s:g}" for s in args.sparsities)],
                [[f"{a} ({dense[a]:.1%})", m, *(_cell(r) for r in rows if r["architecture"] == a and r["method"] == m)]
                 for a in args.architectures for m in args.methods],
                note="@s: the sparsity reached where it differs from the target (SAP picks its own)")
    if args.accuracy_only:
        return {"accuracy": rows}
    call = call_rows(args.width, args.depth, 0.9)
    print_table(f"one global magnitude prune call to 90%: {args.depth} x Linear({args.width}, {args.width}), "
                f"{call['weights'] / 1e6:.1f}M weights ({call['model_mb']:.0f} MB)",
                ["implementation", "seconds", "peak extra memory (MB)"],
                [[name, f"{call[name]['seconds']:.3f}", f"{call[name]['extra_peak_mb']:.0f}"]
                 for name in ("nmkit", "torch")],
                note=f"nmkit: {call['torch']['seconds'] / call['nmkit']['seconds']:.1f}x faster, "
                     f"{call['nmkit']['extra_peak_mb'] / max(call['torch']['extra_peak_mb'], 1e-9):.2f}x the memory")
    latency = latency_rows(args.width, args.depth, [0.9, 0.95, 0.99], [1, 256])
    print_table("CPU inference, 2 threads: dense vs CSR Linear weights (ms per forward)",
                ["sparsity", "batch", "dense", "CSR", "CSR speed-up"],
                [[f"{r['sparsity']:g}", str(r["batch"]), f"{r['dense_ms']:.3f}", f"{r['csr_ms']:.3f}",
                  f"{r['dense_ms'] / r['csr_ms']:.2f}x"] for r in latency])
    return {"accuracy": rows, "call": call, "latency": latency}


if __name__ == "__main__":
    main()
