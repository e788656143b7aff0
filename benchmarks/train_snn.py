"""nmkit train-snn: SpikeGPT beside its non-spiking twin, a GRU and the same model on snnTorch's Leaky neuron.

Arms: ``default`` (the model ``nmkit train-snn`` trains by default), ``spikegpt`` (the paper's binary LIF, binary
embedding, tau 2), ``rwkv`` (the twin without spikes), ``gru``, ``snntorch``, and the neuron arms of NEURON_ARMS
alone or joined by '+' (for example ``integer+real-embedding+tau1``, which is the default).

Every arm trains on the pydoc corpus with the same split, the same batches (one seeded sampler), the same
optimiser settings and the same token budget, at about the same parameter count; then validation BPC over every
validation window, training tokens/s (optimiser steps only) and RNN-mode generation tokens/s at batch 1. The
snnTorch arm is SpikeGPT with each LIF replaced by ``snntorch.Leaky`` (beta 0.5 on half the input = tau 2 with
decay_input, threshold 1, reset to zero, ATan surrogate alpha 2) stepped token by token, the way snnTorch runs.

    python -m benchmarks.train_snn [--steps 300] [--d-model 128] [--layers 4] [--ctx 128] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from benchmarks.harness import print_table
from nmkit.core.snn.config import SnnConfig
from nmkit.core.snn.data import BUILT_IN, load_corpus, split
from nmkit.core.snn.model import ModelConfig, SpikeGPT
from nmkit.core.snn.report import operations_per_token
from nmkit.core.snn.run import model_config_of
from nmkit.core.snn.sampling import generate
from nmkit.core.snn.training import OptimConfig, Trainer, evaluate

SEED = 0
# SpikeGPT's neuron and the spike codes the SNN literature uses for language models, each an arm (ModelConfig fields)
NEURON_ARMS = {
    "spikegpt": {},
    "ternary": {"neuron": "ternary"},
    "integer": {"neuron": "integer"},
    "signed-integer": {"neuron": "signed-integer"},
    "learned-threshold": {"learn_threshold": True},
    "real-readout": {"readout": "real"},
    "real-embedding": {"embedding": "real"},
    "tau1": {"tau": 1.0},
    "levels8": {"spike_levels": 8},
}


def neuron_fields(arm: str) -> dict:
    """The ModelConfig fields of a neuron arm, or of several joined by '+' (``integer+real-embedding+tau1``)."""
    return {k: v for part in arm.split("+") for k, v in NEURON_ARMS[part].items()}


class GRUModel(nn.Module):
    """A character GRU with SpikeGPT's interface: tokens [B, T] (and a hidden state) -> logits, state."""

    def __init__(self, vocab: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None):
        out, state = self.gru(self.embedding(tokens), state)
        return self.head(out), state


def gru_width(parameters: int, vocab: int, layers: int) -> int:
    """The GRU width whose parameter count comes closest to ``parameters``."""
    count = lambda h: sum(p.numel() for p in GRUModel(vocab, h, layers).parameters())  # noqa: E731
    return min(range(16, 1024, 4), key=lambda h: abs(count(h) - parameters))


def snntorch_neurons(model: SpikeGPT) -> SpikeGPT:
    """Replace every block's LIF by snnTorch's Leaky, stepped along the token axis."""
    import snntorch
    from snntorch import surrogate

    def make():
        leaky = snntorch.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.atan(alpha=2.0),
                               reset_mechanism="zero", reset_delay=False)

        def neuron(x: torch.Tensor, potential: torch.Tensor | None = None):
            membrane = torch.zeros_like(x[:, 0]) if potential is None else potential
            spikes = []
            for t in range(x.shape[1]):
                fired, membrane = leaky(0.5 * x[:, t], membrane)
                spikes.append(fired)
            return torch.stack(spikes, 1), membrane

        return neuron

    for block in model.blocks:
        block.neuron = make()
    return model


def run_arm(name: str, model: nn.Module, parts: dict, args, vocab: int) -> dict:
    trainer = Trainer(model, OptimConfig(lr_init=args.lr), seed=SEED, steps=args.steps)
    start = time.perf_counter()
    losses = list(trainer.train(parts["train"], args.batch_size, args.ctx, args.steps))
    seconds = time.perf_counter() - start
    valid_bpc, rates = evaluate(model, parts["valid"], args.ctx)
    prompt = parts["valid"][0, :32]
    start = time.perf_counter()
    generated = sum(1 for _ in generate(model, prompt, args.generate, rng=np.random.default_rng(0)))
    inference = generated / (time.perf_counter() - start)
    spiking = isinstance(model, SpikeGPT) and model.config.spiking
    rate = sum(r for layer in rates for r in layer.values()) / max(1, sum(len(layer) for layer in rates))
    return {"arm": name, "parameters": sum(p.numel() for p in model.parameters()), "valid_bpc": valid_bpc,
            "final_train_bpc": sum(losses[-20:]) / len(losses[-20:]) / 0.6931471805599453,
            "train_tokens_per_second": args.steps * args.batch_size * args.ctx / seconds,
            "rnn_tokens_per_second": inference, "spike_rate": rate if spiking else None,
            "energy_nj": operations_per_token(model.config, rates)["energy_pj"] / 1e3
            if isinstance(model, SpikeGPT) else None}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--generate", type=int, default=200, help="tokens generated in RNN mode per arm")
    parser.add_argument("--chars", type=int, default=None, help="use the first CHARS characters of the corpus")
    parser.add_argument("--corpus", default="pydoc", choices=list(BUILT_IN), help="built-in corpus")
    parser.add_argument("--arms", nargs="+", default=["default", "spikegpt", "rwkv", "gru", "snntorch"],
                        help=f"any of default, rwkv, gru, snntorch, {', '.join(NEURON_ARMS)}, or neuron arms joined "
                             "by '+'")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus)
    parts = {k: torch.from_numpy(v) for k, v in split(corpus.tokens[: args.chars], args.ctx, SEED).items()}
    vocab = corpus.vocab_size
    spiking = ModelConfig(vocab, args.d_model, args.layers)
    size = sum(p.numel() for p in SpikeGPT(spiking).parameters())
    builders = {
        "default": lambda: SpikeGPT(model_config_of(SnnConfig(layers=args.layers, d_model=args.d_model), vocab)),
        "rwkv": lambda: SpikeGPT(ModelConfig(vocab, args.d_model, args.layers, spiking=False)),
        "gru": lambda: GRUModel(vocab, gru_width(size, vocab, 2), 2),
        "snntorch": lambda: snntorch_neurons(SpikeGPT(spiking)),
    }
    for arm in args.arms:  # neuron arms, alone or joined such as ternary+learned-threshold+real-readout
        if arm not in builders:
            fields = neuron_fields(arm)
            builders[arm] = lambda fields=fields: SpikeGPT(ModelConfig(vocab, args.d_model, args.layers, **fields))
    rows = []
    for arm in args.arms:
        torch.manual_seed(SEED)
        rows.append(run_arm(arm, builders[arm](), parts, args, vocab))
    by_arm = {r["arm"]: r for r in rows}
    tokens = args.steps * args.batch_size * args.ctx
    print_table(f"train-snn: {tokens:,} training tokens per arm ({args.corpus}, ctx {args.ctx}, "
                f"batch {args.batch_size}, lr {args.lr:g}), 2 threads",
                ["arm", "parameters", "valid BPC", "train BPC (last 20)", "train tokens/s", "RNN tokens/s (batch 1)",
                 "spikes per neuron", "energy/token"],
                [[r["arm"], f"{r['parameters']:,}", f"{r['valid_bpc']:.4f}", f"{r['final_train_bpc']:.4f}",
                  f"{r['train_tokens_per_second']:,.0f}", f"{r['rnn_tokens_per_second']:,.0f}",
                  "-" if r["spike_rate"] is None else f"{r['spike_rate']:.3f}",
                  "-" if r["energy_nj"] is None else f"{r['energy_nj']:,.0f} nJ"] for r in rows],
                note="energy: MACs 4.6 pJ, ACs 0.9 pJ; every SpikeGPT matmul reads real values, so only the spikes' "
                     "residual additions count as ACs")
    ratios = {}
    if {"default", "rwkv"} <= by_arm.keys():
        ratios["bpc_vs_twin"] = by_arm["default"]["valid_bpc"] / by_arm["rwkv"]["valid_bpc"]
    if {"spikegpt", "rwkv"} <= by_arm.keys():
        ratios["paper_bpc_vs_twin"] = by_arm["spikegpt"]["valid_bpc"] / by_arm["rwkv"]["valid_bpc"]
    if {"spikegpt", "snntorch"} <= by_arm.keys():
        ratios["throughput_vs_snntorch"] = (by_arm["spikegpt"]["train_tokens_per_second"]
                                            / by_arm["snntorch"]["train_tokens_per_second"])
    goals = {"bpc_vs_twin": ("nmkit's default spiking model BPC / twin BPC", "<= 1.05"),
             "paper_bpc_vs_twin": ("the paper's binary neuron BPC / twin BPC", "-"),
             "throughput_vs_snntorch": ("SpikeGPT / snnTorch training tokens/s", ">= 2")}
    print_table("train-snn: goals", ["ratio", "measured", "goal"],
                [[goals[k][0], f"{v:.3f}", goals[k][1]] for k, v in ratios.items()])
    return {"rows": rows, "ratios": ratios}


if __name__ == "__main__":
    main()
