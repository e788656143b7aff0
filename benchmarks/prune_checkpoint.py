"""Pruning checkpoints larger than memory: ``nmkit prune FOLDER --sparsity 0.5 --out OUT`` on synthetic
Llama-shaped sharded fp16 checkpoints (Hugging Face layout: shards of at most ``--shard-gb``, the index,
config.json), beside a plain copy of the same files (``cp -r``, and ``cp -r`` then ``sync``: nmkit fsyncs every
file it writes), each as its own process under /usr/bin/time (wall seconds, peak resident memory).

The default sizes are Llama-2-7B's shapes with 2, 8 and 32 layers (1.3, 3.8 and 13.5 GB). The checkpoints are
written once into ``--folder`` (kept for the next run) with random N(0, 0.02) weights; each timed command starts
with the checkpoint's files evicted from the page cache (``posix_fadvise``), so all read from disk. Needs about
3x the largest checkpoint in free disk.

    python -m benchmarks.prune_checkpoint [--layers 2 8 32] [--folder /var/tmp/nmkit-llama] [--shard-gb 5]

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import print_table

NMKIT = [sys.executable, "-c", "from nmkit.cli.app import main; main()"]
HIDDEN, INTERMEDIATE, VOCAB, KV_HEADS_DIM = 4096, 11008, 32000, 4096


def _tensors(layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """Llama-2-7B's tensor names and shapes, ``layers`` decoder layers."""
    shapes = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(layers):
        prefix = f"model.layers.{i}."
        shapes += [(prefix + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
                   (prefix + "self_attn.k_proj.weight", (KV_HEADS_DIM, HIDDEN)),
                   (prefix + "self_attn.v_proj.weight", (KV_HEADS_DIM, HIDDEN)),
                   (prefix + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
                   (prefix + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
                   (prefix + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
                   (prefix + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
                   (prefix + "input_layernorm.weight", (HIDDEN,)),
                   (prefix + "post_attention_layernorm.weight", (HIDDEN,))]
    return shapes + [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]


def make_checkpoint(folder: Path, layers: int, shard_bytes: int) -> None:
    """Write the sharded fp16 checkpoint tensor by tensor (never more than one tensor in memory)."""
    import torch

    from nmkit.core.prune.shard_io import ShardWriter, TensorEntry

    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in _tensors(layers):
        nbytes = 2 * torch.Size(shape).numel()
        if size and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    weight_map = {}
    for number, shard in enumerate(shards, 1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        entries, offset = [], 0
        for name, shape in shard:
            nbytes = 2 * torch.Size(shape).numel()
            entries.append(TensorEntry(name, torch.float16, shape, offset, offset + nbytes))
            offset += nbytes
            weight_map[name] = file
        with open(folder / file, "wb") as handle, ShardWriter(handle, entries, {"format": "pt"}) as writer:
            for name, shape in shard:
                ones = len(shape) == 1
                writer.write(name, torch.ones(shape, dtype=torch.float16) if ones else
                             (torch.randn(shape, generator=generator) * 0.02).to(torch.float16))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": HIDDEN,
                                                    "intermediate_size": INTERMEDIATE, "num_hidden_layers": layers,
                                                    "vocab_size": VOCAB, "torch_dtype": "float16"}))


def _evict(folder: Path) -> None:
    """Flush dirty pages and drop ``folder``'s files from the page cache (no root needed for clean pages), so
    every timed command starts reading from disk."""
    os.sync()
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _timed(command: list[str], cold: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``command``, under /usr/bin/time, with ``cold``'s files evicted."""
    _evict(cold)
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=True)
    wall, rss = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--folder", type=Path, default=Path("/var/tmp/nmkit-llama"))
    parser.add_argument("--shard-gb", type=float, default=5.0)
    args = parser.parse_args(argv)
    rows = []
    for layers in args.layers:
        model = args.folder / f"llama-{layers}"
        if not (model / "config.json").exists():
            shutil.rmtree(model, ignore_errors=True)
            make_checkpoint(model, layers, int(args.shard_gb * 1e9))
        files = sorted(model.glob("*.safetensors"))
        total, largest = sum(f.stat().st_size for f in files), max(f.stat().st_size for f in files)
        copy, out = args.folder / "copy", args.folder / "pruned"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        copy_s, _ = _timed(["cp", "-r", str(model), str(copy)], model)
        shutil.rmtree(copy)
        durable_s, _ = _timed(["sh", "-c", f"cp -r {model} {copy} && sync"], model)  # nmkit fsyncs its files
        shutil.rmtree(copy)
        prune_s, rss = _timed([*NMKIT, "prune", str(model), "--method", "global-mp", "--sparsity", "0.5",
                               "--out", str(out), "--quiet"], model)
        run = json.loads((out / "result.json").read_text())["result"]["runs"][0]
        weights = sum(layer["weights"] for layer in run["layers"])
        zeros = weights - sum(layer["nonzero"] for layer in run["layers"])
        rows.append({"layers": layers, "gb": total / 1e9, "shards": len(files),
                     "largest_gb": largest / 1e9, "copy_s": copy_s, "durable_s": durable_s, "prune_s": prune_s,
                     "rss_gb": rss / 1024, "pruned": weights, "exact": zeros == round(0.5 * weights)})
        shutil.rmtree(out)
    print_table("prune a sharded fp16 checkpoint, global magnitude 50% (whole process; copy = cp -r of the files)",
                ["layers", "checkpoint GB", "shards", "largest shard GB", "pruned weights", "exactly 50%",
                 "cp -r s", "cp -r + sync s", "nmkit s", "nmkit / copy+sync", "nmkit peak RSS GB",
                 "goal: <= largest shard + 1 GB"],
                [[str(r["layers"]), f"{r['gb']:.2f}", str(r["shards"]), f"{r['largest_gb']:.2f}",
                  f"{r['pruned'] / 1e9:.2f}G", "yes" if r["exact"] else "NO", f"{r['copy_s']:.1f}",
                  f"{r['durable_s']:.1f}", f"{r['prune_s']:.1f}", f"{r['prune_s'] / r['durable_s']:.2f}x",
                  f"{r['rss_gb']:.2f}",
                  "met" if r["rss_gb"] <= r["largest_gb"] + 1 else "MISSED"] for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
