"""The GPU check: every Triton kernel test on CUDA (not the interpreter), then the GPU rows of the benchmarks,
written to one JSON file. ``benchmarks/gpu_check.sh`` runs it; ``--dry-run`` resolves every step (imports, callables,
inputs, which rows would be skipped and why) and executes none, so it can be checked on a CPU-only machine.

Each step records status ``ok`` / ``skipped`` (with the reason: no CUDA, a missing package) / ``failed`` (with the
error); a failed step never stops the others, and nothing is skipped silently. Sizes are the issue's: hamming
bit-packed at n = 10^7, OT n = 2000 beside ``ot.emd``, DCDM at 256^2 beside CG, WKV + LIF forward/backward at
B8 T1024 C512, the magnitude histogram of 100M weights, HCLT likelihood.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    name: str
    what: str
    run: Callable[[], dict]
    needs: tuple[str, ...] = ()  # importable modules the step cannot do without
    optional: tuple[str, ...] = ()  # anchors: the row runs without them and says which were absent
    uses: tuple[str, ...] = ()  # "module:name" the step calls; --dry-run imports each and checks it is there
    result: dict = field(default_factory=dict)


def _cuda_timer(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median milliseconds of ``fn`` on CUDA after a warm-up (launch + compile), synchronised."""
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def kernel_tests() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kernels"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return {"exit_code": done.returncode, "summary": tail, "passed": done.returncode == 0}


def hamming_bitpacked() -> dict:
    import torch

    from nmkit.kernels.hamming_bitpacked import mismatch_counts, mismatch_counts_ref

    generator = torch.Generator(device="cuda").manual_seed(0)
    text = torch.randint(0, 4, (10_000_000,), device="cuda", generator=generator)
    rows = {}
    for m in (100, 1000):
        pattern = text[5000:5000 + m].clone()
        fast = mismatch_counts(text, pattern)
        assert torch.equal(fast[:100_000], mismatch_counts_ref(text[:100_000 + m - 1], pattern)), "differs from ref"
        rows[f"m={m}"] = {"triton_ms": _cuda_timer(lambda p=pattern: mismatch_counts(text, p)),
                          "torch_ref_ms": _cuda_timer(lambda p=pattern: mismatch_counts_ref(text, p), repeats=3)}
    return rows


def optimal_transport() -> dict:
    import numpy as np

    from nmkit.core.ot.config import OTConfig
    from nmkit.core.ot.problems import build_problem
    from nmkit.core.ot.transport import transport

    config = OTConfig(problem="gaussians", size=2000, k=2, device="cuda")
    problem = build_problem(config)
    start = time.perf_counter()
    result = transport(config, problem)
    row = {"nmkit_sparsity_k2_s": time.perf_counter() - start, "nmkit_cost": float(result.cost[0]),
           "iterations": result.iterations, "max_nnz_per_column": result.max_nnz_per_column}
    if importlib.util.find_spec("ot") is None:
        row["ot.emd"] = "skipped: POT is not installed here"
        return row
    import ot

    a, b, cost = (np.asarray(x[0], dtype=np.float64) for x in (problem.a, problem.b, problem.cost))
    start = time.perf_counter()
    plan = ot.emd(a, b, cost)
    row.update({"ot_emd_s": time.perf_counter() - start, "ot_emd_cost": float((plan * cost).sum())})
    return row


def dcdm() -> dict:
    from benchmarks.solve_linear import solve_rows, train_model

    with tempfile.TemporaryDirectory() as folder:
        trained = train_model(Path(folder), "poisson2d", 64, "none", steps=300, levels=3)
        rows = solve_rows(Path(folder), "poisson2d", [256], "none", [1e-6])
    solves = rows[0]["solves"]
    return {"train_seconds": trained["seconds"],
            **{method: {k: solves[method][k] for k in ("iterations", "converged", "seconds")
                        if k in solves[method]} for method in ("cg", "dcdm") if method in solves}}


def snn_kernels() -> dict:
    import torch

    from nmkit.kernels.lif import Firing, lif, lif_ref
    from nmkit.kernels.wkv import wkv, wkv_ref

    batch, steps, channels = 8, 1024, 512
    generator = torch.Generator(device="cuda").manual_seed(0)
    k, v = (torch.randn(batch, steps, channels, device="cuda", generator=generator, requires_grad=True)
            for _ in range(2))
    w = torch.rand(channels, device="cuda", generator=generator).requires_grad_()
    u = torch.randn(channels, device="cuda", generator=generator, requires_grad=True)
    x = torch.randn(batch, steps, channels, device="cuda", generator=generator, requires_grad=True)

    def wkv_step(fn):
        out, _ = fn(w, u, k, v)
        out.sum().backward()

    def lif_step(**neuron):
        spikes, _ = lif(x, **neuron)
        spikes.sum().backward()

    integer = {"tau": 1.0, "firing": Firing(levels=4, soft_reset=True),  # train-snn's default neuron
               "threshold": torch.full((channels,), 0.7, device="cuda", requires_grad=True)}
    head = x[:, :64].detach().requires_grad_()
    grads = [torch.autograd.grad(fn(head, **integer)[0].square().sum(), (head, integer["threshold"]))
             for fn in (lif, lif_ref)]
    lif_error = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) for a, b in zip(*grads, strict=True))

    out, _ = wkv(w, u, k, v)
    ref, _ = wkv_ref(w, u, k, v)
    error = float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
    return {"wkv_fwd_bwd_ms": _cuda_timer(lambda: wkv_step(wkv)),
            "wkv_ref_fwd_bwd_ms": _cuda_timer(lambda: wkv_step(wkv_ref), repeats=1),
            "lif_fwd_bwd_ms": _cuda_timer(lif_step), "lif_integer_fwd_bwd_ms": _cuda_timer(lambda: lif_step(**integer)),
            "lif_integer_grad_max_relative_error_vs_ref": lif_error, "wkv_max_relative_error_vs_ref": error}


def magnitude_histogram() -> dict:
    import torch

    from nmkit.kernels.magnitude_histogram import radix_histogram, radix_histogram_ref

    scores = torch.randn(100_000_000, device="cuda", generator=torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(radix_histogram(scores, absolute=True), radix_histogram_ref(scores, absolute=True))
    return {"triton_ms": _cuda_timer(lambda: radix_histogram(scores, absolute=True)),
            "torch_bincount_ms": _cuda_timer(lambda: radix_histogram_ref(scores, absolute=True)),
            "torch_kthvalue_ms": _cuda_timer(lambda: scores.abs().kthvalue(50_000_000), repeats=3)}


def hclt_likelihood() -> dict:
    import torch

    from nmkit.kernels.hclt_sum_product import sum_product, sum_product_ref

    generator = torch.Generator(device="cuda").manual_seed(0)
    rows = torch.rand(65_536, 128, device="cuda", generator=generator)
    matrix = torch.rand(128, 128, device="cuda", generator=generator)
    fast, ref = sum_product(rows, matrix), sum_product_ref(rows, matrix)
    error = float((fast[1] - ref[1]).abs().max())
    return {"triton_ms": _cuda_timer(lambda: sum_product(rows, matrix)),
            "torch_ms": _cuda_timer(lambda: sum_product_ref(rows, matrix)), "max_log_scale_error": error}


STEPS = [
    Step("kernel-tests", "pytest tests/kernels on CUDA (TRITON_INTERPRET unset)", kernel_tests, ("torch", "triton",
         "pytest")),
    Step("hamming-bitpacked", "bit-packed mismatch counts, n = 10^7, |S| = 4, m = 100 and 1000", hamming_bitpacked,
         ("torch", "triton"), uses=("nmkit.kernels.hamming_bitpacked:mismatch_counts",
                                    "nmkit.kernels.hamming_bitpacked:mismatch_counts_ref")),
    Step("optimal-transport", "sparsity-constrained OT, k = 2, n = 2000 Gaussians, beside ot.emd", optimal_transport,
         ("torch", "scipy"), optional=("ot",), uses=("nmkit.core.ot.transport:transport",
                                                     "nmkit.core.ot.problems:build_problem")),
    Step("dcdm", "DCDM (trained at 64^2) vs CG on the 256^2 Poisson system to 1e-6", dcdm, ("torch", "scipy"),
         uses=("benchmarks.solve_linear:train_model", "benchmarks.solve_linear:solve_rows")),
    Step("wkv-lif", "WKV + LIF forward/backward at B8 T1024 C512", snn_kernels, ("torch", "triton"),
         uses=("nmkit.kernels.wkv:wkv", "nmkit.kernels.wkv:wkv_ref", "nmkit.kernels.lif:lif",
               "nmkit.kernels.lif:lif_ref")),
    Step("magnitude-histogram", "radix histogram of 100M weights (global magnitude pruning's threshold search)",
         magnitude_histogram, ("torch", "triton"), uses=("nmkit.kernels.magnitude_histogram:radix_histogram",)),
    Step("hclt-likelihood", "HCLT sum-product layer, 65,536 rows x 128 states", hclt_likelihood, ("torch", "triton"),
         uses=("nmkit.kernels.hclt_sum_product:sum_product",)),
]


def check_uses(step: Step) -> list[str]:
    """The ``uses`` entries that do not resolve (empty: all import and exist)."""
    broken = []
    for use in step.uses:
        module, _, name = use.partition(":")
        try:
            if not hasattr(importlib.import_module(module), name):
                broken.append(f"{use} (no such name)")
        except ImportError as exc:
            broken.append(f"{use} ({exc})")
    return broken


def resolve(step: Step, cuda: bool) -> str | None:
    """Why the step cannot run here (None: it can)."""
    missing = [name for name in step.needs if importlib.util.find_spec(name) is None]
    if missing:
        return f"skipped: {', '.join(missing)} not installed"
    if not cuda:
        return "skipped: no CUDA device"
    return None


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="resolve every step, execute none")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--only", nargs="+", choices=[s.name for s in STEPS], help="run these steps only")
    args = parser.parse_args(argv)
    from nmkit.core.device import cuda_available

    cuda = cuda_available()
    report = {"dry_run": args.dry_run, "cuda": cuda, "steps": {}}
    if cuda:
        import torch

        report["device"] = torch.cuda.get_device_name(0)
    for step in STEPS:
        if args.only and step.name not in args.only:
            continue
        reason = resolve(step, cuda)
        absent = [name for name in step.optional if importlib.util.find_spec(name) is None]
        entry = {"what": step.what, "anchors_absent": absent}
        if args.dry_run:
            entry["status"] = "would run" if reason is None else reason.replace("skipped", "would skip")
            entry["calls"] = [f"benchmarks.gpu_check:{step.run.__name__}", *step.uses]
            broken = check_uses(step)
            if broken:
                entry["status"] = "broken: " + "; ".join(broken)
        elif reason is not None:
            entry["status"] = reason
        else:
            start = time.perf_counter()
            try:
                entry.update(status="ok", result=step.run())
            except Exception as exc:  # noqa: BLE001 - one failed row must not hide the others
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            entry["seconds"] = round(time.perf_counter() - start, 3)
        report["steps"][step.name] = entry
        print(f"{step.name:22s} {entry['status']}", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return report


if __name__ == "__main__":
    steps = main(sys.argv[1:])["steps"].values()
    sys.exit(1 if any(s["status"].startswith(("failed", "broken")) for s in steps) else 0)
