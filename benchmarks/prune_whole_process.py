"""Whole-process global magnitude pruning of a large model file: ``nmkit prune`` against a plain script calling
``torch.nn.utils.prune.global_unstructured`` on the same file, each writing the pruned model in the input's format.

The model is a stack of Linear layers (64 -> width x depth -> 10, ~40M weights at the defaults), saved as
TorchScript and as safetensors. Each command runs as its own process under ``/usr/bin/time``: wall seconds, CPU
seconds (user + system) and peak resident memory, median of ``--repeats`` after a warm-up.

    python -m benchmarks.prune_whole_process [--width 2048] [--depth 10] [--repeats 3]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks.harness import print_table

NMKIT = [sys.executable, "-c", "from nmkit.cli.app import main; main()"]


def _make_models(folder: Path, width: int, depth: int) -> int:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    widths = [64] + [width] * depth + [10]
    layers = [torch.nn.Flatten()]
    for i in range(len(widths) - 1):
        layers += [torch.nn.Linear(widths[i], widths[i + 1])] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
    model = torch.nn.Sequential(*layers)
    torch.jit.save(torch.jit.script(model), str(folder / "model.ts"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return sum(m.weight.numel() for m in model if isinstance(m, torch.nn.Linear))


def _peer(folder: Path, fmt: str, width: int, depth: int) -> str:
    """torch's pruner on the same file: rebuild the eager model, prune, fold the masks, write the same format."""
    load = {"ts": f'state = torch.jit.load("{folder}/model.ts").state_dict()',
            "safetensors": f'state = load_file("{folder}/model.safetensors")'}[fmt]
    save = {"ts": f'torch.jit.save(torch.jit.script(model), "{folder}/peer.ts")',
            "safetensors": f'save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, '
                           f'"{folder}/peer.safetensors")'}[fmt]
    return textwrap.dedent(f"""
        import torch
        from torch.nn.utils import prune
        from safetensors.torch import load_file, save_file
        {load}
        widths = [64] + [{width}] * {depth} + [10]
        layers = [torch.nn.Flatten()]
        for i in range(len(widths) - 1):
            layers += [torch.nn.Linear(widths[i], widths[i + 1])] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
        model = torch.nn.Sequential(*layers)
        model.load_state_dict(state)
        params = [(m, "weight") for m in model if isinstance(m, torch.nn.Linear)]
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.9)
        for m, name in params:
            prune.remove(m, name)
        {save}
    """)


def _measure(command: list[str], repeats: int) -> dict[str, float]:
    """Median wall, CPU and peak RSS of ``command`` under /usr/bin/time (after one warm-up run)."""
    runs = []
    for attempt in range(repeats + 1):
        done = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *command], capture_output=True, text=True,
                              check=True)
        wall, user, system, rss = done.stderr.strip().splitlines()[-1].split()
        if attempt:
            runs.append({"wall": float(wall), "cpu": float(user) + float(system), "rss_mb": int(rss) / 1024})
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = _make_models(folder, args.width, args.depth)
        for fmt, file in (("ts", "model.ts"), ("safetensors", "model.safetensors")):
            ours = _measure([*NMKIT, "prune", str(folder / file), "--method", "global-mp", "--sparsity", "0.9",
                             "--out", str(folder / f"out-{fmt}"), "--force", "--quiet", "--json"], args.repeats)
            peer = _measure([sys.executable, "-c", _peer(folder, fmt, args.width, args.depth)], args.repeats)
            rows.append({"format": fmt, "weights": weights, "nmkit": ours, "peer": peer})
    print_table(f"prune whole process, global magnitude 90% (median of {args.repeats}; ratio = peer / nmkit)",
                ["input", "weights", "nmkit wall s", "torch wall s", "wall ratio", "nmkit CPU s", "torch CPU s",
                 "CPU ratio", "nmkit peak MB", "torch peak MB", "memory nmkit / torch"],
                [[r["format"], f"{r['weights'] / 1e6:.1f}M", f"{r['nmkit']['wall']:.2f}", f"{r['peer']['wall']:.2f}",
                  f"{r['peer']['wall'] / r['nmkit']['wall']:.2f}x", f"{r['nmkit']['cpu']:.2f}",
                  f"{r['peer']['cpu']:.2f}", f"{r['peer']['cpu'] / r['nmkit']['cpu']:.2f}x",
                  f"{r['nmkit']['rss_mb']:.0f}", f"{r['peer']['rss_mb']:.0f}",
                  f"{r['nmkit']['rss_mb'] / r['peer']['rss_mb']:.2f}x"] for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
