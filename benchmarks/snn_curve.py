"""nmkit train-snn: the spiking model's validation BPC over its non-spiking twin's as training goes on.

``run`` trains one arm (``default``: the model ``nmkit train-snn`` trains by default; ``rwkv``: its non-spiking twin;
or any neuron arm of ``benchmarks.train_snn``, such as ``spikegpt``, the paper's neuron) at one
size with the same seeded batches as every other arm, measures validation BPC on a fixed set of validation windows
every ``--eval-every`` steps and appends it to a JSON-lines log; it checkpoints beside the log and continues from
there when started again, so a long run survives interruptions. Arms run as separate processes (one thread each on
a 2-core machine). ``plot`` reads the logs, prints each size's ratio table and draws ``bpc_ratio.svg``; ``test``
evaluates each log's last checkpoint on the whole test split.

    python -m benchmarks.snn_curve run --arm default --size small --steps 10000 --log runs/curve/small-spikegpt.jsonl
    python -m benchmarks.snn_curve run --arm rwkv --size small --steps 10000 --log runs/curve/small-rwkv.jsonl
    python -m benchmarks.snn_curve plot runs/curve/*.jsonl --out bpc_ratio.svg
    python -m benchmarks.snn_curve test runs/curve/*.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import print_table
from benchmarks.train_snn import SEED, neuron_fields
from nmkit.core.io import atomic_write, write_text
from nmkit.core.snn.config import SnnConfig
from nmkit.core.snn.data import BUILT_IN, load_corpus, split
from nmkit.core.snn.model import ModelConfig
from nmkit.core.snn.run import model_config_of
from nmkit.core.snn.training import OptimConfig, Trainer, evaluate
from nmkit.core.svg import line_chart

SIZES = {"small": (4, 128), "large": (4, 256)}  # layers, d_model: 0.9M and 3.5M parameters on pydoc
DEFAULT, TWIN = "default", "rwkv"
GOAL = 1.05  # the ratio


def model_config(arm: str, vocab: int, size: str) -> ModelConfig:
    layers, width = SIZES[size]
    if arm in (DEFAULT, TWIN):
        return model_config_of(SnnConfig(layers=layers, d_model=width, baseline="none" if arm == DEFAULT else "rwkv"),
                               vocab)
    return ModelConfig(vocab, width, layers, **neuron_fields(arm))


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus)
    parts = {k: torch.from_numpy(v) for k, v in split(corpus.tokens, args.ctx, SEED).items()}
    log, saved = Path(args.log), Path(args.log).with_suffix(".pt")
    log.parent.mkdir(parents=True, exist_ok=True)
    optim = OptimConfig(lr_init=args.lr)
    if saved.exists():
        trainer = Trainer.restore(torch.load(saved, weights_only=True))
    else:
        trainer = Trainer.fresh(model_config(args.arm, corpus.vocab_size, args.size), optim, seed=SEED,
                                steps=args.steps)
        log.write_text("")
    header = {"arm": args.arm, "size": args.size, "corpus": args.corpus, "tokens_per_step": args.batch_size * args.ctx,
              "parameters": sum(p.numel() for p in trainer.model.parameters())}
    start = time.perf_counter()
    while trainer.step < args.steps:
        losses = list(trainer.train(parts["train"], args.batch_size, args.ctx, min(args.eval_every,
                                                                                    args.steps - trainer.step)))
        bpc, rates = evaluate(trainer.model, parts["valid"], args.ctx, limit=args.eval_windows)
        events = [float(np.mean(list(layer.values()))) for layer in rates if layer]
        record = {**header, "step": trainer.step, "valid_bpc": bpc, "train_bpc": float(np.mean(losses)) / np.log(2),
                  "spikes_per_neuron": float(np.mean(events)) if events else None,
                  "seconds": time.perf_counter() - start}
        state = trainer.checkpoint()
        atomic_write(saved, lambda handle, state=state: torch.save(state, handle), record=False)
        with log.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def plot(args: argparse.Namespace) -> dict:
    records = [json.loads(line) for path in args.logs for line in Path(path).read_text().splitlines() if line]
    curves: dict[tuple[str, str, str], dict[int, dict]] = {}
    for record in records:
        curves.setdefault((record["corpus"], record["size"], record["arm"]), {})[record["step"]] = record
    series, tokens_axis, summary = {}, set(), {}
    for (corpus, size, arm), points in sorted(curves.items()):
        twin = curves.get((corpus, size, TWIN))
        if arm == TWIN or twin is None:
            continue
        steps = sorted(set(points) & set(twin))
        ratios = {points[s]["tokens_per_step"] * s: points[s]["valid_bpc"] / twin[s]["valid_bpc"] for s in steps}
        if not steps:
            continue
        label = f"{arm} / twin, {corpus}, {size} ({points[steps[0]]['parameters'] / 1e6:.1f}M)"
        series[label] = ratios
        tokens_axis |= set(ratios)
        rows = [[f"{s:,}", f"{points[s]['tokens_per_step'] * s / 1e6:.1f}M", f"{points[s]['valid_bpc']:.4f}",
                 f"{twin[s]['valid_bpc']:.4f}", f"{ratios[points[s]['tokens_per_step'] * s]:.3f}"]
                for s in sorted(set(steps[:: max(1, len(steps) // 12)] + steps[-1:]))]
        print_table(f"{label}: validation BPC", ["step", "tokens", arm, "twin", "ratio"], rows)
        summary[label] = {"last_step": steps[-1], "ratio": ratios[points[steps[-1]]["tokens_per_step"] * steps[-1]],
                          "first_at_or_below_goal": next((s for s in steps if
                                                          ratios[points[s]["tokens_per_step"] * s] <= GOAL), None)}
    axis = np.array(sorted(tokens_axis), np.float64)
    curves = {name: np.array([r.get(t, np.nan) for t in sorted(tokens_axis)]) for name, r in series.items()}
    picture = line_chart(axis / 1e6, {**curves, f"goal {GOAL}": np.full(len(axis), GOAL)},
                         x_label="training tokens (millions)", y_label="validation BPC, spiking / non-spiking twin")
    write_text(Path(args.out), picture, record=False)
    print(json.dumps(summary, indent=1))
    return summary


def test(args: argparse.Namespace) -> dict:
    """Test BPC over every window of the test split for each log's last checkpoint."""
    torch.set_num_threads(args.threads)
    found = {}
    for path in args.logs:
        last = json.loads(Path(path).read_text().splitlines()[-1])
        trainer = Trainer.restore(torch.load(Path(path).with_suffix(".pt"), weights_only=True))
        corpus = load_corpus(last["corpus"])
        blocks = torch.from_numpy(split(corpus.tokens, args.ctx, SEED)["test"])
        found[path] = {**{k: last[k] for k in ("corpus", "size", "arm", "step")},
                       "test_bpc": evaluate(trainer.model, blocks, args.ctx)[0]}
        print(json.dumps(found[path]), flush=True)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="train one arm, logging validation BPC")
    runner.add_argument("--arm", default=DEFAULT)
    runner.add_argument("--size", default="small", choices=list(SIZES))
    runner.add_argument("--corpus", default="pydoc", choices=list(BUILT_IN))
    runner.add_argument("--steps", type=int, default=10_000)
    runner.add_argument("--eval-every", type=int, default=250)
    runner.add_argument("--eval-windows", type=int, default=128)
    runner.add_argument("--ctx", type=int, default=128)
    runner.add_argument("--batch-size", type=int, default=16)
    runner.add_argument("--lr", type=float, default=4e-3)
    runner.add_argument("--threads", type=int, default=1)
    runner.add_argument("--log", required=True)
    plotter = commands.add_parser("plot", help="ratio tables and bpc_ratio.svg from the logs")
    plotter.add_argument("logs", nargs="+")
    plotter.add_argument("--out", default="bpc_ratio.svg")
    tester = commands.add_parser("test", help="test BPC of each log's last checkpoint")
    tester.add_argument("logs", nargs="+")
    tester.add_argument("--ctx", type=int, default=128)
    tester.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    {"run": run, "plot": plot, "test": test}[args.command](args)


if __name__ == "__main__":
    main()
